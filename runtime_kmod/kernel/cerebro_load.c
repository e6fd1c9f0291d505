// SPDX-License-Identifier: MIT
/*
 * LOAD_MODEL: the kernel reads the .cbx itself, checks it with the shared
 * core (ELF structure, meta, content hash) and binds it to the registered
 * model module carrying the same hash. When none is registered it asks for
 * the module alias "cerebro-model-<first 16 hash bytes in hex>"
 * (request_module; module names are capped at 55 characters), so an
 * installed and depmod'ed model module loads on demand.
 *
 * The path comes from the caller: only a regular file is opened (a FIFO
 * would block, a device node's open() has side effects), the 512 MiB cap is
 * checked before anything is allocated, the buffer is charged to the
 * caller's memory cgroup, and alias look-ups (each one runs modprobe) are
 * rate-limited.
 *
 * Refusals are recorded in the error the caller passes in (its open file's,
 * or sysfs's for model_path), so this file depends on nothing above it.
 */
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kernel_read_file.h>
#include <linux/kmod.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/namei.h>
#include <linux/ratelimit.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

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

/* Why a file could not be read, by errno (others are reported by number). */
static const struct {
	int err;
	const char *why;
} read_errors[] = {
	{ -ENOENT, "no such file" },
	{ -EACCES, "permission denied" },
	{ -EINVAL, "not a regular file" },
	{ -EFBIG, "larger than the 512 MiB cap" },
	{ -ENOEXEC, "empty file, not a .cbx" },
	{ -ENOMEM, "out of memory for its contents" },
	{ -ETXTBSY, "open for writing by someone" },
};

/* At most 10 alias look-ups (modprobe runs) per 5 s, for all callers together. */
static struct ratelimit_state modprobe_ratelimit =
	RATELIMIT_STATE_INIT_FLAGS(modprobe_ratelimit, 5 * HZ, 10, RATELIMIT_MSG_ON_RELEASE);

static void read_error(struct cerebro_error *error, const char *path, int err)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(read_errors); i++) {
		if (read_errors[i].err == err) {
			cerebro_report(error, NULL, "load %s: %s", path, read_errors[i].why);
			return;
		}
	}
	cerebro_report(error, NULL, "load %s: cannot read it (errno %d)", path, -err);
}

/*
 * Opens @path with the caller's permissions, but only if it is a regular
 * file: the type is checked on the looked-up inode before open() runs.
 * O_NONBLOCK covers a path swapped for a FIFO between the two look-ups.
 */
static struct file *open_regular(const char *path)
{
	struct file *file;
	struct path found;
	int ret;

	ret = kern_path(path, LOOKUP_FOLLOW, &found);
	if (ret)
		return ERR_PTR(ret);
	ret = d_is_reg(found.dentry) ? 0 : -EINVAL;
	path_put(&found);
	if (ret)
		return ERR_PTR(ret);
	file = filp_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (!IS_ERR(file) && !S_ISREG(file_inode(file)->i_mode)) {
		filp_close(file, NULL);
		return ERR_PTR(-EINVAL);
	}
	return file;
}

/* The whole file in a buffer charged to the caller; the size cap comes first. */
static int read_capped(const char *path, void **data, size_t *size)
{
	struct file *file;
	loff_t file_size;
	ssize_t got;
	int ret = 0;

	file = open_regular(path);
	if (IS_ERR(file))
		return PTR_ERR(file);
	file_size = i_size_read(file_inode(file));
	if (file_size > CEREBRO_MAX_FILE_SIZE)
		ret = -EFBIG;
	else if (file_size <= 0)
		ret = -ENOEXEC;
	if (!ret) {
		*data = kvmalloc(file_size, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
		ret = *data ? 0 : -ENOMEM;
	}
	if (!ret) {
		/* no file_size pointer: a file grown past the buffer is -EFBIG */
		got = kernel_read_file(file, 0, data, file_size, NULL, READING_UNKNOWN);
		if (got < 0) {
			kvfree(*data);
			ret = got;
		} else {
			*size = got;
		}
	}
	filp_close(file, NULL);
	return ret;
}

static int check_image(struct cerebro_error *error, const char *path, const void *data,
		       size_t size, u8 *hash)
{
	struct cbx_error err = { 0 };
	struct cbx_image *img;
	int status;

	img = kmalloc(sizeof(*img), GFP_KERNEL_ACCOUNT);
	if (!img)
		return -ENOMEM;
	status = cbx_image_parse(img, data, size, CEREBRO_MACHINE_SELF, &err);
	if (status == CBX_OK)
		memcpy(hash, img->meta.hash, sizeof(img->meta.hash));
	kfree(img);
	if (status == CBX_OK)
		return 0;
	cerebro_report(error, NULL, "load %s: %s", path, err.msg);
	if (status < 0 || status >= ARRAY_SIZE(status_errno) || !status_errno[status])
		return -EINVAL;
	return status_errno[status];
}

/* The registered model with @hash (a user reference), asking modprobe if allowed. */
static struct cerebro_model *bind(struct cerebro_error *error, const char *path, const u8 *hash)
{
	struct cerebro_model *model = cerebro_model_get_by_hash(hash);

	if (model)
		return model;
	if (!__ratelimit(&modprobe_ratelimit)) {
		cerebro_report(error, NULL,
			       "load %s: no model module for hash %32phN is loaded, and the alias look-up was skipped (more than 10 in 5 s)",
			       path, hash);
		return ERR_PTR(-ENOPKG);
	}
	request_module(CEREBRO_MODEL_ALIAS_PREFIX "%16phN", hash);
	model = cerebro_model_get_by_hash(hash);
	if (!model) {
		cerebro_report(error, NULL,
			       "load %s: no model module for hash %32phN; build it with 'cerebroc kmod build' and insmod it",
			       path, hash);
		return ERR_PTR(-ENOPKG);
	}
	return model;
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

static struct cerebro_model *check_sections(struct cerebro_error *error, const char *path,
					    struct cerebro_model *model)
{
	u64 limit = READ_ONCE(max_stage_flops);

	if (IS_ERR(model) || model->meta.max_stage_flops <= limit)
		return model;
	cerebro_report(error, NULL, "load %s: a stage of %llu flops > max_stage_flops %llu (one FPU section each)",
		       path, (unsigned long long)model->meta.max_stage_flops, limit);
	cerebro_model_put(model);
	return ERR_PTR(-E2BIG);
}

struct cerebro_model *cerebro_load_path(const char *path, struct cerebro_error *error)
{
	size_t size = 0;
	void *data = NULL;
	u8 hash[32];
	int ret;

	ret = read_capped(path, &data, &size);
	if (ret) {
		read_error(error, path, ret);
		return ERR_PTR(ret);
	}
	ret = check_image(error, path, data, size, hash);
	kvfree(data);
	if (ret)
		return ERR_PTR(ret);
	if (fatal_signal_pending(current)) {
		cerebro_report(error, NULL, "load %s: killed before binding it", path);
		return ERR_PTR(-EINTR);
	}
	return check_sections(error, path, bind(error, path, hash));
}
