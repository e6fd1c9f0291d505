// SPDX-License-Identifier: MIT
/*
 * LOAD_MODEL: the kernel reads the .cbx itself (size-capped), checks it with
 * the shared core (ELF structure, meta, content hash) and binds it to the
 * registered model module carrying the same hash. When none is registered
 * it asks for the module alias "cerebro-model-<first 16 hash bytes in hex>"
 * (request_module; module names are capped at 55 characters), so
 * an installed and depmod'ed model module loads on demand.
 */
#include <linux/err.h>
#include <linux/kernel_read_file.h>
#include <linux/kmod.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "cerebro_internal.h"
#include "image.h"

static const int status_errno[] = {
	[CBX_OK] = 0,
	[CBX_ETRUNC] = -ENOEXEC,
	[CBX_EMAGIC] = -ENOEXEC,
	[CBX_EFORMAT] = -ENOEXEC,
	[CBX_EMACHINE] = -ENOEXEC,
	[CBX_EMETA] = -ENOEXEC,
	[CBX_EHASH] = -EBADMSG,
	[CBX_ERELOC] = -ENOEXEC,
	[CBX_ESYMBOL] = -ENOEXEC,
	[CBX_ENOMEM] = -ENOMEM,
	[CBX_ERUN] = -EIO,
	[CBX_EINTR] = -EINTR,
};

static int check_image(const char *path, const void *data, size_t size, u8 *hash)
{
	struct cbx_error err = { 0 };
	struct cbx_image *img;
	int status;

	img = kmalloc(sizeof(*img), GFP_KERNEL);
	if (!img)
		return -ENOMEM;
	status = cbx_image_parse(img, data, size, CEREBRO_MACHINE_SELF, &err);
	if (status == CBX_OK)
		memcpy(hash, img->meta.hash, sizeof(img->meta.hash));
	kfree(img);
	if (status == CBX_OK)
		return 0;
	cerebro_global_error("load %s: %s", path, err.msg);
	if (status < 0 || status >= ARRAY_SIZE(status_errno) || !status_errno[status])
		return -EINVAL;
	return status_errno[status];
}

/*
 * The kernel runs each stage of a model in one kernel_fpu_begin/end section
 * (preemption off). The compiler cuts work into stages of at most ~1 ms on a
 * 2 GHz core (STAGE_FLOPS, 4 M estimated flops); a model whose largest stage
 * is estimated above this limit is refused.
 */
static unsigned long long max_stage_flops = 4000000;
module_param(max_stage_flops, ullong, 0644);
MODULE_PARM_DESC(max_stage_flops,
		 "refuse models whose largest stage (one FPU section) is estimated above this many flops");

static struct cerebro_model *check_sections(const char *path, struct cerebro_model *model)
{
	u64 limit = READ_ONCE(max_stage_flops);

	if (IS_ERR(model) || model->meta.max_stage_flops <= limit)
		return model;
	cerebro_global_error("load %s: a stage of %llu flops > max_stage_flops %llu (one FPU section each)",
			     path, (unsigned long long)model->meta.max_stage_flops, limit);
	cerebro_model_put(model);
	return ERR_PTR(-E2BIG);
}

struct cerebro_model *cerebro_load_path(const char *path)
{
	struct cerebro_model *model;
	size_t file_size = 0;
	void *data = NULL;
	u8 hash[32];
	ssize_t got;
	int ret;

	got = kernel_read_file_from_path(path, 0, &data, CEREBRO_MAX_FILE_SIZE, &file_size,
					 READING_UNKNOWN);
	if (got < 0) {
		cerebro_global_error("load %s: cannot read it (errno %zd%s)", path, -got,
				     got == -EFBIG ? ", larger than the 512 MiB cap" :
				     got == -EINVAL ? ", not a regular file" : "");
		return ERR_PTR(got);
	}
	ret = check_image(path, data, got, hash);
	vfree(data);
	if (ret)
		return ERR_PTR(ret);

	model = cerebro_model_get_by_hash(hash);
	if (!model) {
		request_module(CEREBRO_MODEL_ALIAS_PREFIX "%16phN", hash);
		model = cerebro_model_get_by_hash(hash);
	}
	if (!model) {
		cerebro_global_error("load %s: no model module for hash %32phN; build it with 'cerebroc kmod build' and insmod it",
				     path, hash);
		return ERR_PTR(-ENOPKG);
	}
	return check_sections(path, model);
}
