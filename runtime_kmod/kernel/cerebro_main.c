// SPDX-License-Identifier: MIT
/*
 * cerebro.ko: the misc device /dev/cerebro. Each open file owns up to
 * CEREBRO_MAX_HANDLES handles; a handle owns its arena and tensor buffers,
 * so files run in parallel and no call allocates. Every user pointer goes
 * through copy_{from,to}_user and every size is checked against the model's
 * signature; each refusal records one line saying why in the file's own
 * last error (LAST_ERROR reads it; cerebro_report.c). Handle memory is
 * charged to the caller's memory cgroup, and a process waiting for its
 * file's lock, or between stages, can be killed. read() and write() are the
 * text command channel (cerebro_cmd.c), built on the helpers exported here.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "cerebro_fpu.h"
#include "cerebro_internal.h"

#define ALIGN_BYTES 64	/* CEREBRO_BUFFER_ALIGN */
#define MAX_HANDLE_BYTES (1ULL << 30)	/* below kvmalloc's INT_MAX limit */

struct cerebro_head {
	__u32 size;
	__u32 version;
};

/* ---- handles ---- */

static u64 post_bytes(const struct cerebro_model *model)
{
	return model->tensors[model->meta.num_inputs].nbytes;
}

void cerebro_handle_destroy(struct cerebro_handle *h)
{
	if (!h)
		return;
	kvfree(h->block);
	kfree(h->inputs);
	kfree(h->outputs);
	cerebro_model_put(h->model);
	kfree(h);
}

/*
 * Lays arena, inputs, outputs and the post buffer out 64-byte aligned. The
 * module runs plain stage numbers, one part: the arena is one region
 * (cbx.h), whatever number a batch-chunked model's split calls could use.
 */
static int handle_layout(struct cerebro_model *model, u64 *offsets, u64 *total)
{
	u32 count = model->meta.num_inputs + model->meta.num_outputs;
	u64 arena = cbx_arena_bytes(&model->meta, 1);
	u64 at = ALIGN(arena, ALIGN_BYTES);
	u32 i;

	if (arena > MAX_HANDLE_BYTES)
		return -ENOMEM;
	for (i = 0; i <= count; i++) {
		u64 size = i < count ? model->tensors[i].nbytes : post_bytes(model);

		if (size > MAX_HANDLE_BYTES || at > MAX_HANDLE_BYTES)
			return -ENOMEM;
		offsets[i] = at;
		at += ALIGN(size, ALIGN_BYTES);
	}
	if (at > MAX_HANDLE_BYTES)
		return -ENOMEM;
	*total = at;
	return 0;
}

static struct cerebro_handle *handle_create(struct cerebro_file *cf, struct cerebro_model *model)
{
	u32 nin = model->meta.num_inputs, nout = model->meta.num_outputs;
	struct cerebro_handle *h;
	u64 *offsets, total;
	u8 *base;
	u32 i;
	int ret;

	h = kzalloc(sizeof(*h), GFP_KERNEL_ACCOUNT);
	if (!h) {
		cerebro_report(&cf->error, model->module_name, "LOAD_MODEL: out of memory for a handle");
		cerebro_model_put(model);
		return ERR_PTR(-ENOMEM);
	}
	h->model = model;	/* from here on cerebro_handle_destroy() drops the reference */
	offsets = kcalloc(nin + nout + 1, sizeof(*offsets), GFP_KERNEL_ACCOUNT);
	if (!offsets)
		goto nomem;
	ret = handle_layout(model, offsets, &total);
	if (ret) {
		cerebro_report(&cf->error, model->module_name,
			       "LOAD_MODEL: buffers for one handle exceed %llu bytes", MAX_HANDLE_BYTES);
		goto fail;
	}
	h->inputs = kcalloc(nin ? nin : 1, sizeof(void *), GFP_KERNEL_ACCOUNT);
	h->outputs = kcalloc(nout, sizeof(void *), GFP_KERNEL_ACCOUNT);
	h->block = kvzalloc(total + ALIGN_BYTES, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!h->inputs || !h->outputs || !h->block)
		goto nomem;
	base = PTR_ALIGN((u8 *)h->block, ALIGN_BYTES);
	h->arena = base;
	for (i = 0; i < nin; i++)
		h->inputs[i] = base + offsets[i];
	for (i = 0; i < nout; i++)
		h->outputs[i] = base + offsets[nin + i];
	h->post = base + offsets[nin + nout];
	kfree(offsets);
	return h;
nomem:
	ret = -ENOMEM;
	cerebro_report(&cf->error, model->module_name, "LOAD_MODEL: out of memory for a handle");
fail:
	kfree(offsets);
	cerebro_handle_destroy(h);
	return ERR_PTR(ret);
}

/*
 * The file's lock is held across a whole call (copy-in, every stage,
 * copy-out), so waiting for it must not make a process unkillable.
 */
int cerebro_file_lock(struct cerebro_file *cf, const char *op)
{
	if (!mutex_lock_killable(&cf->lock))
		return 0;
	cerebro_report(&cf->error, NULL, "%s: killed while waiting for this file's lock", op);
	return -EINTR;
}

/* Caller holds cf->lock. */
static struct cerebro_handle *handle_lookup(struct cerebro_file *cf, u32 id, const char *op)
{
	if (id == 0 || id > CEREBRO_MAX_HANDLES || !cf->handles[id - 1]) {
		cerebro_report(&cf->error, NULL, "%s: unknown handle %u (not loaded through this open file)",
			       op, id);
		return NULL;
	}
	return cf->handles[id - 1];
}

/* ---- ioctl argument checks ---- */

static int copy_arg(struct cerebro_file *cf, void *dst, void __user *arg, size_t size,
		    const char *op)
{
	struct cerebro_head *head = dst;

	if (copy_from_user(dst, arg, size)) {
		cerebro_report(&cf->error, NULL, "%s: bad pointer to the ioctl argument", op);
		return -EFAULT;
	}
	if (head->size != size || head->version != CEREBRO_UAPI_VERSION) {
		cerebro_report(&cf->error, NULL, "%s: struct size %u / version %u, expected %zu / %d",
			       op, head->size, head->version, size, CEREBRO_UAPI_VERSION);
		return -EINVAL;
	}
	return 0;
}

static struct cerebro_buffer *copy_buffers(struct cerebro_file *cf, struct cerebro_model *model,
					   const struct cerebro_io *io, u32 expected,
					   const char *op)
{
	struct cerebro_buffer *bufs;

	if (io->num_buffers != expected) {
		cerebro_report(&cf->error, model->module_name, "%s: %u buffers given, the signature has %u",
			       op, io->num_buffers, expected);
		return ERR_PTR(-EINVAL);
	}
	bufs = memdup_user(u64_to_user_ptr(io->buffers), (size_t)expected * sizeof(*bufs));
	if (IS_ERR(bufs))
		cerebro_report(&cf->error, model->module_name, "%s: bad pointer to the buffer array", op);
	return bufs;
}

/* ---- LOAD_MODEL ---- */

struct cerebro_handle *cerebro_handle_open(struct cerebro_file *cf, const char *path)
{
	struct cerebro_model *model;

	if (!path) {
		model = cerebro_default_get();
		if (!model) {
			cerebro_report(&cf->error, NULL,
				       "LOAD_MODEL: no path and no default model (write /sys/kernel/cerebro/model_path)");
			return ERR_PTR(-ENOENT);
		}
	} else {
		model = cerebro_load_path(path, &cf->error);
		if (IS_ERR(model))
			return ERR_CAST(model);
	}
	return handle_create(cf, model);
}

static long ioctl_load(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_handle *h;
	struct cerebro_load ld;
	char *path = NULL;
	int ret, slot;

	ret = copy_arg(cf, &ld, arg, sizeof(ld), "LOAD_MODEL");
	if (ret)
		return ret;
	if (ld.reserved) {
		cerebro_report(&cf->error, NULL, "LOAD_MODEL: reserved field is not 0");
		return -EINVAL;
	}
	if (ld.path) {
		path = strndup_user(u64_to_user_ptr(ld.path), PATH_MAX);
		if (IS_ERR(path)) {
			cerebro_report(&cf->error, NULL, "LOAD_MODEL: bad path pointer or path longer than %d",
				       PATH_MAX);
			return PTR_ERR(path);
		}
	}
	h = cerebro_handle_open(cf, path);
	kfree(path);
	if (IS_ERR(h))
		return PTR_ERR(h);

	if (cerebro_file_lock(cf, "LOAD_MODEL")) {
		cerebro_handle_destroy(h);
		return -EINTR;
	}
	for (slot = 0; slot < CEREBRO_MAX_HANDLES; slot++) {
		if (!cf->handles[slot])
			break;
	}
	if (slot == CEREBRO_MAX_HANDLES) {
		mutex_unlock(&cf->lock);
		cerebro_handle_destroy(h);
		cerebro_report(&cf->error, NULL, "LOAD_MODEL: this file already has %d handles",
			       CEREBRO_MAX_HANDLES);
		return -EMFILE;
	}
	cf->handles[slot] = h;
	ld.handle = slot + 1;
	if (copy_to_user(arg, &ld, sizeof(ld))) {
		cf->handles[slot] = NULL;
		mutex_unlock(&cf->lock);
		cerebro_handle_destroy(h);
		cerebro_report(&cf->error, NULL, "LOAD_MODEL: cannot write the handle back");
		return -EFAULT;
	}
	mutex_unlock(&cf->lock);
	return 0;
}

/* ---- EXECUTE_MODEL ---- */

static int copy_inputs(struct cerebro_file *cf, struct cerebro_handle *h,
		       const struct cerebro_buffer *bufs)
{
	struct cerebro_model *model = h->model;
	u32 i;

	for (i = 0; i < model->meta.num_inputs; i++) {
		const struct cbx_tensor *t = &model->tensors[i];

		if (bufs[i].nbytes != t->nbytes) {
			cerebro_report(&cf->error, model->module_name,
				       "EXECUTE_MODEL: input %u ('%s') has %llu bytes, the signature needs %llu",
				       i, t->name, bufs[i].nbytes, t->nbytes);
			return -EINVAL;
		}
		if (copy_from_user(h->inputs[i], u64_to_user_ptr(bufs[i].data), t->nbytes)) {
			cerebro_report(&cf->error, model->module_name,
				       "EXECUTE_MODEL: bad pointer for input %u ('%s')", i, t->name);
			return -EFAULT;
		}
	}
	return 0;
}

/*
 * One FPU section per stage; returns the longest in @max_ns. An fpu "none"
 * model runs without one: its code names no FP/SIMD register (`cerebroc kmod
 * build` disassembled it), so it leaves the interrupted task's FP state alone
 * and keeps preemption on. Between two stages a dying caller stops the call:
 * nobody will read its results.
 */
static int run_stages(struct cerebro_file *cf, struct cerebro_handle *h, u64 *max_ns)
{
	struct cerebro_model *model = h->model;
	bool fpu = model->meta.fpu != CBX_FPU_NONE;
	u32 stage;
	int rc;

	*max_ns = 0;
	for (stage = 0; stage < model->meta.num_stages; stage++) {
		u64 start = ktime_get_ns();

		if (fpu)
			kernel_fpu_begin();
		rc = model->desc->run_stage((const void *const *)h->inputs, h->outputs,
					    h->arena, stage);
		if (fpu)
			kernel_fpu_end();
		*max_ns = max(*max_ns, ktime_get_ns() - start);
		if (rc) {
			cerebro_report(&cf->error, model->module_name,
				       "EXECUTE_MODEL: stage %u returned error %d", stage, rc);
			return -EIO;
		}
		if (fatal_signal_pending(current)) {
			cerebro_report(&cf->error, model->module_name,
				       "EXECUTE_MODEL: killed after stage %u of %u", stage + 1,
				       model->meta.num_stages);
			return -EINTR;
		}
		cond_resched();
	}
	return 0;
}

int cerebro_handle_run(struct cerebro_file *cf, struct cerebro_handle *h, u64 start_ns)
{
	struct cerebro_model *model = h->model;
	struct cerebro_options opts;
	struct cerebro_tensor_info out0;
	char why[CEREBRO_MSG_LEN];
	u64 fpu_ns, pre_ns;
	int ret;

	spin_lock(&model->lock);
	opts = model->opts;
	spin_unlock(&model->lock);
	ret = cerebro_post_signature(&model->tensors[model->meta.num_inputs], &opts, &out0,
				     why, sizeof(why));
	if (ret) {
		cerebro_report(&cf->error, model->module_name, "EXECUTE_MODEL: %s", why);
		return ret;
	}
	pre_ns = cerebro_preprocess(h, &opts);
	ret = run_stages(cf, h, &fpu_ns);
	if (ret)
		return ret;
	fpu_ns = max3(fpu_ns, pre_ns, cerebro_postprocess(h, &opts));
	h->result0 = out0;
	h->result_post = opts.post;
	h->has_results = true;
	cerebro_model_account(model, ktime_get_ns() - start_ns, fpu_ns);
	return 0;
}

static long ioctl_execute(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_buffer *bufs;
	struct cerebro_handle *h;
	struct cerebro_io io;
	u64 start = ktime_get_ns();
	int ret;

	ret = copy_arg(cf, &io, arg, sizeof(io), "EXECUTE_MODEL");
	if (ret)
		return ret;
	if (cerebro_file_lock(cf, "EXECUTE_MODEL"))
		return -EINTR;
	h = handle_lookup(cf, io.handle, "EXECUTE_MODEL");
	if (!h) {
		ret = -ENOENT;
		goto out;
	}
	h->has_results = false;	/* a failed call leaves no stale results */
	bufs = copy_buffers(cf, h->model, &io, h->model->meta.num_inputs, "EXECUTE_MODEL");
	if (IS_ERR(bufs)) {
		ret = PTR_ERR(bufs);
		goto out;
	}
	ret = copy_inputs(cf, h, bufs);
	kfree(bufs);
	if (!ret)
		ret = cerebro_handle_run(cf, h, start);
out:
	mutex_unlock(&cf->lock);
	return ret;
}

/* ---- GET_RESULTS ---- */

const void *cerebro_handle_output(const struct cerebro_handle *h, u32 i, u64 *nbytes)
{
	const struct cerebro_model *model = h->model;
	bool post = i == 0 && h->result_post != CEREBRO_POST_NONE;

	*nbytes = i == 0 ? h->result0.nbytes : model->tensors[model->meta.num_inputs + i].nbytes;
	return post ? h->post : h->outputs[i];
}

static long ioctl_get_results(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_buffer *bufs;
	struct cerebro_handle *h;
	struct cerebro_model *model;
	struct cerebro_io io;
	u32 i;
	int ret;

	ret = copy_arg(cf, &io, arg, sizeof(io), "GET_RESULTS");
	if (ret)
		return ret;
	if (cerebro_file_lock(cf, "GET_RESULTS"))
		return -EINTR;
	h = handle_lookup(cf, io.handle, "GET_RESULTS");
	if (!h) {
		ret = -ENOENT;
		goto out;
	}
	model = h->model;
	if (!h->has_results) {
		cerebro_report(&cf->error, model->module_name,
			       "GET_RESULTS: handle %u has no results (call EXECUTE_MODEL first)", io.handle);
		ret = -ENODATA;
		goto out;
	}
	bufs = copy_buffers(cf, model, &io, model->meta.num_outputs, "GET_RESULTS");
	if (IS_ERR(bufs)) {
		ret = PTR_ERR(bufs);
		goto out;
	}
	/* every size first, so a refused call writes nothing */
	for (i = 0; i < model->meta.num_outputs && !ret; i++) {
		const struct cbx_tensor *t = &model->tensors[model->meta.num_inputs + i];
		u64 nbytes;

		cerebro_handle_output(h, i, &nbytes);
		if (bufs[i].nbytes != nbytes) {
			cerebro_report(&cf->error, model->module_name,
				       "GET_RESULTS: output %u ('%s') buffer has %llu bytes, needs %llu",
				       i, t->name, bufs[i].nbytes, nbytes);
			ret = -EINVAL;
		}
	}
	for (i = 0; i < model->meta.num_outputs && !ret; i++) {
		u64 nbytes;
		const void *src = cerebro_handle_output(h, i, &nbytes);

		if (copy_to_user(u64_to_user_ptr(bufs[i].data), src, nbytes)) {
			cerebro_report(&cf->error, model->module_name,
				       "GET_RESULTS: bad pointer for output %u ('%s')", i,
				       model->tensors[model->meta.num_inputs + i].name);
			ret = -EFAULT;
		}
	}
	kfree(bufs);
out:
	mutex_unlock(&cf->lock);
	return ret;
}

/* ---- MODEL_INFO and UNLOAD_MODEL ---- */

void cerebro_tensor_record(const struct cerebro_model *model, const struct cerebro_options *opts,
			   u32 i, struct cerebro_tensor_info *rec)
{
	char why[CEREBRO_MSG_LEN];

	BUILD_BUG_ON(sizeof(*rec) != sizeof(struct cbx_tensor));
	memcpy(rec, &model->tensors[i], sizeof(*rec));
	if (i == model->meta.num_inputs &&
	    cerebro_post_signature(&model->tensors[i], opts, rec, why, sizeof(why)))
		memcpy(rec, &model->tensors[i], sizeof(*rec));
}

static long ioctl_info(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_tensor_info __user *dst;
	struct cerebro_options opts;
	struct cerebro_tensor_info rec;
	struct cerebro_handle *h;
	struct cerebro_model *model;
	struct cerebro_info info;
	u32 i, count;
	int ret;

	ret = copy_arg(cf, &info, arg, sizeof(info), "MODEL_INFO");
	if (ret)
		return ret;
	if (cerebro_file_lock(cf, "MODEL_INFO"))
		return -EINTR;
	h = handle_lookup(cf, info.handle, "MODEL_INFO");
	if (!h) {
		ret = -ENOENT;
		goto out;
	}
	model = h->model;
	spin_lock(&model->lock);
	opts = model->opts;
	spin_unlock(&model->lock);
	count = min(info.max_tensors, model->meta.num_inputs + model->meta.num_outputs);
	dst = u64_to_user_ptr(info.tensors);
	for (i = 0; i < count && !ret; i++) {
		cerebro_tensor_record(model, &opts, i, &rec);
		if (copy_to_user(&dst[i], &rec, sizeof(rec))) {
			cerebro_report(&cf->error, NULL, "MODEL_INFO: bad tensors pointer");
			ret = -EFAULT;
		}
	}
	if (ret)
		goto out;
	info.num_inputs = model->meta.num_inputs;
	info.num_outputs = model->meta.num_outputs;
	info.num_stages = model->meta.num_stages;
	info.reserved = 0;
	memcpy(info.hash, model->meta.hash, sizeof(info.hash));
	strscpy(info.model_name, model->meta.model_name, sizeof(info.model_name));
	strscpy(info.module_name, model->module_name, sizeof(info.module_name));
	if (copy_to_user(arg, &info, sizeof(info))) {
		cerebro_report(&cf->error, NULL, "MODEL_INFO: cannot write the result back");
		ret = -EFAULT;
	}
out:
	mutex_unlock(&cf->lock);
	return ret;
}

static long ioctl_unload(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_handle_arg ha;
	struct cerebro_handle *h;
	int ret;

	ret = copy_arg(cf, &ha, arg, sizeof(ha), "UNLOAD_MODEL");
	if (ret)
		return ret;
	if (cerebro_file_lock(cf, "UNLOAD_MODEL"))
		return -EINTR;
	h = handle_lookup(cf, ha.handle, "UNLOAD_MODEL");
	if (h)
		cf->handles[ha.handle - 1] = NULL;
	mutex_unlock(&cf->lock);
	if (!h)
		return -ENOENT;
	cerebro_handle_destroy(h);
	return 0;
}

/* ---- LAST_ERROR: this file's own last refusal ---- */

static long ioctl_last_error(struct cerebro_file *cf, void __user *arg)
{
	struct cerebro_last_error le;
	int ret;

	ret = copy_arg(cf, &le, arg, sizeof(le), "LAST_ERROR");
	if (ret)
		return ret;
	if (le.reserved) {
		cerebro_report(&cf->error, NULL, "LAST_ERROR: reserved field is not 0");
		return -EINVAL;
	}
	BUILD_BUG_ON(sizeof(le.message) != CEREBRO_MSG_LEN);
	le.error = cerebro_error_read(&cf->error, le.message, sizeof(le.message));
	if (copy_to_user(arg, &le, sizeof(le))) {
		cerebro_report(&cf->error, NULL, "LAST_ERROR: cannot write the result back");
		return -EFAULT;
	}
	return 0;
}

/* ---- the device ---- */

typedef long (*cerebro_ioctl_fn)(struct cerebro_file *cf, void __user *arg);

static const struct {
	unsigned int cmd;
	const char *name;
	cerebro_ioctl_fn fn;
} ioctls[] = {
	{ CEREBRO_IOC_LOAD_MODEL, "LOAD_MODEL", ioctl_load },
	{ CEREBRO_IOC_EXECUTE_MODEL, "EXECUTE_MODEL", ioctl_execute },
	{ CEREBRO_IOC_GET_RESULTS, "GET_RESULTS", ioctl_get_results },
	{ CEREBRO_IOC_MODEL_INFO, "MODEL_INFO", ioctl_info },
	{ CEREBRO_IOC_UNLOAD_MODEL, "UNLOAD_MODEL", ioctl_unload },
	{ CEREBRO_IOC_LAST_ERROR, "LAST_ERROR", ioctl_last_error },
};

static long cerebro_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct cerebro_file *cf = file->private_data;
	u32 reports = cerebro_error_reports(&cf->error);
	long ret;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ioctls); i++) {
		if (ioctls[i].cmd != cmd)
			continue;
		ret = ioctls[i].fn(cf, (void __user *)arg);
		if (ret < 0)
			cerebro_error_failed(&cf->error, reports, ioctls[i].name, ret);
		return ret;
	}
	cerebro_report(&cf->error, NULL, "unknown ioctl 0x%x", cmd);
	cerebro_error_failed(&cf->error, reports, "ioctl", -ENOTTY);
	return -ENOTTY;
}

static int cerebro_open(struct inode *inode, struct file *file)
{
	struct cerebro_file *cf = kzalloc(sizeof(*cf), GFP_KERNEL_ACCOUNT);

	if (!cf)
		return -ENOMEM;
	mutex_init(&cf->lock);
	cerebro_error_init(&cf->error);
	file->private_data = cf;
	return 0;
}

static int cerebro_release(struct inode *inode, struct file *file)
{
	struct cerebro_file *cf = file->private_data;
	int i;

	for (i = 0; i < CEREBRO_MAX_HANDLES; i++)
		cerebro_handle_destroy(cf->handles[i]);
	cerebro_cmd_release(cf);
	kfree(cf);
	return 0;
}

static const struct file_operations cerebro_fops = {
	.owner = THIS_MODULE,
	.open = cerebro_open,
	.release = cerebro_release,
	.read = cerebro_cmd_read,
	.write = cerebro_cmd_write,
	.unlocked_ioctl = cerebro_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice cerebro_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cerebro",
	.fops = &cerebro_fops,
};

static int __init cerebro_init(void)
{
	int ret;

	ret = cerebro_sysfs_init();
	if (ret)
		return ret;
	ret = misc_register(&cerebro_dev);
	if (ret) {
		cerebro_sysfs_exit();
		return ret;
	}
	pr_info("/dev/cerebro ready (uapi %d)\n", CEREBRO_UAPI_VERSION);
	return 0;
}

static void __exit cerebro_exit(void)
{
	misc_deregister(&cerebro_dev);
	cerebro_sysfs_exit();
	pr_info("unloaded\n");
}

module_init(cerebro_init);
module_exit(cerebro_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("Cerebro: run compiled .cbx models through /dev/cerebro");
