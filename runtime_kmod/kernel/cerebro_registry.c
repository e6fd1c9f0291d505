// SPDX-License-Identifier: MIT
/*
 * Registered model modules and their sysfs directories. A model module
 * registers at insmod and unregisters at rmmod; users (handles and the
 * default model) pin its module with try_module_get, so rmmod of a model
 * in use is refused by the kernel's module loader itself. Writes to a
 * model's sysfs files that are refused say why in that model's last_error.
 *
 * Registration is root's business (insmod), but an insmod/rmmod loop can
 * repeat its log lines at will, so they are rate-limited too.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "cerebro_fpu.h"
#include "cerebro_internal.h"
#include "meta.h"

DEFINE_MUTEX(cerebro_lock);
static LIST_HEAD(cerebro_models);
static struct kobject *models_kobj;

static const char *const dtype_names[] = {
	[CBX_DTYPE_F32] = "f32", [CBX_DTYPE_F64] = "f64", [CBX_DTYPE_I8] = "i8",
	[CBX_DTYPE_I16] = "i16", [CBX_DTYPE_I32] = "i32", [CBX_DTYPE_I64] = "i64",
	[CBX_DTYPE_U8] = "u8", [CBX_DTYPE_BOOL] = "bool", [CBX_DTYPE_U16] = "u16",
	[CBX_DTYPE_U32] = "u32", [CBX_DTYPE_F16] = "f16", [CBX_DTYPE_BF16] = "bf16",
};

static const char *const post_names[] = {
	[CEREBRO_POST_NONE] = "none", [CEREBRO_POST_SOFTMAX] = "softmax",
	[CEREBRO_POST_ARGMAX] = "argmax", [CEREBRO_POST_TOPK] = "topk",
};

static struct cerebro_model *to_model(struct kobject *kobj)
{
	return container_of(kobj, struct cerebro_model, kobj);
}

static __printf(2, 3) void model_error(struct cerebro_model *model, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	cerebro_vreport(&model->error, model->module_name, fmt, args);
	va_end(args);
}

void cerebro_model_account(struct cerebro_model *model, u64 ns, u64 max_fpu_ns)
{
	spin_lock(&model->lock);
	model->calls++;
	model->total_ns += ns;
	if (max_fpu_ns > model->max_fpu_ns)
		model->max_fpu_ns = max_fpu_ns;
	spin_unlock(&model->lock);
}

/* Finds a registered model and takes a user reference on it. */
struct cerebro_model *cerebro_model_get_by_hash(const u8 *hash)
{
	struct cerebro_model *model;

	mutex_lock(&cerebro_lock);
	list_for_each_entry(model, &cerebro_models, node) {
		if (memcmp(model->meta.hash, hash, sizeof(model->meta.hash)) != 0)
			continue;
		if (!try_module_get(model->desc->owner))
			break;	/* its module is being removed */
		model->users++;
		mutex_unlock(&cerebro_lock);
		return model;
	}
	mutex_unlock(&cerebro_lock);
	return NULL;
}

/* Caller holds cerebro_lock; no reference is taken. */
struct cerebro_model *cerebro_model_find_by_name(const char *name)
{
	struct cerebro_model *model;

	list_for_each_entry(model, &cerebro_models, node) {
		if (strcmp(model->module_name, name) == 0)
			return model;
	}
	return NULL;
}

void cerebro_model_put(struct cerebro_model *model)
{
	struct module *owner = model->desc->owner;

	mutex_lock(&cerebro_lock);
	model->users--;
	mutex_unlock(&cerebro_lock);
	module_put(owner);
}

/* ---- sysfs: /sys/kernel/cerebro/models/<module>/ ---- */

int cerebro_format_tensor(char *line, size_t size, const char *role, const struct cbx_tensor *t)
{
	int len = scnprintf(line, size, "%s %s %s[", role, t->name, dtype_names[t->dtype]);
	u32 d;

	for (d = 0; d < t->rank; d++)
		len += scnprintf(line + len, size - len, d ? ",%llu" : "%llu", t->dims[d]);
	return len + scnprintf(line + len, size - len, "] %llu\n", t->nbytes);
}

/* Room kept at the end of the page for the line saying the rest is missing. */
#define SIGNATURE_TRAILER 128

/*
 * One line per tensor while they fit in sysfs's one page; a big signature
 * ends with a line saying how many were left out (MODEL_INFO has them all).
 */
static ssize_t signature_show(struct kobject *kobj, struct kobj_attribute *attr,
			      char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	u32 count = model->meta.num_inputs + model->meta.num_outputs;
	char line[CEREBRO_TENSOR_LINE];
	ssize_t len = 0;
	u32 i;

	for (i = 0; i < count; i++) {
		int n = cerebro_format_tensor(line, sizeof(line),
					      i < model->meta.num_inputs ? "input" : "output",
					      &model->tensors[i]);

		if (len + n > PAGE_SIZE - SIGNATURE_TRAILER)
			return len + sysfs_emit_at(buf, len,
						   "... truncated: %u of %u tensors shown; the MODEL_INFO ioctl (cerebro-ctl load) lists all\n",
						   i, count);
		len += sysfs_emit_at(buf, len, "%s", line);
	}
	return len;
}

static ssize_t name_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_model(kobj)->meta.model_name);
}

static ssize_t hash_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%32phN\n", to_model(kobj)->meta.hash);
}

static ssize_t stages_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_model(kobj)->meta.num_stages);
}

static ssize_t max_stage_flops_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", (unsigned long long)to_model(kobj)->meta.max_stage_flops);
}

/* "none": the code uses no FP/SIMD register (checked at build), its stages run without an FPU section. */
static ssize_t fpu_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_model(kobj)->meta.fpu == CBX_FPU_NONE ? "none" : "simd");
}

static ssize_t users_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	int users;

	mutex_lock(&cerebro_lock);
	users = to_model(kobj)->users;
	mutex_unlock(&cerebro_lock);
	return sysfs_emit(buf, "%d\n", users);
}

static ssize_t calls_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	u64 calls;

	spin_lock(&model->lock);
	calls = model->calls;
	spin_unlock(&model->lock);
	return sysfs_emit(buf, "%llu\n", calls);
}

/* Writing 0 resets the statistics (calls, mean latency, longest FPU section). */
static ssize_t calls_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	struct cerebro_model *model = to_model(kobj);
	u64 value;

	if (kstrtou64(buf, 10, &value) || value != 0) {
		model_error(model, "sysfs: only 0 may be written to calls (resets the statistics)");
		return -EINVAL;
	}
	spin_lock(&model->lock);
	model->calls = 0;
	model->total_ns = 0;
	model->max_fpu_ns = 0;
	spin_unlock(&model->lock);
	return count;
}

static ssize_t mean_latency_ns_show(struct kobject *kobj, struct kobj_attribute *attr,
				    char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	u64 calls, total;

	spin_lock(&model->lock);
	calls = model->calls;
	total = model->total_ns;
	spin_unlock(&model->lock);
	return sysfs_emit(buf, "%llu\n", calls ? div64_u64(total, calls) : 0);
}

static ssize_t max_fpu_section_ns_show(struct kobject *kobj, struct kobj_attribute *attr,
				       char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	u64 ns;

	spin_lock(&model->lock);
	ns = model->max_fpu_ns;
	spin_unlock(&model->lock);
	return sysfs_emit(buf, "%llu\n", ns);
}

static ssize_t last_error_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	char msg[CEREBRO_MSG_LEN];

	cerebro_error_read(&to_model(kobj)->error, msg, sizeof(msg));
	return sysfs_emit(buf, "%s\n", msg);
}

/*
 * A decimal number without floating point: [-]digits[.digits][e[-]digits],
 * at most 9 significant digits, |exponent| <= 30.
 */
static int parse_decimal(const char *text, s64 *mantissa, int *exp10)
{
	const char *p = text;
	bool negative = false, any = false;
	int digits = 0, scale = 0, exp = 0, exp_sign = 1;
	s64 m = 0;

	if (*p == '-' || *p == '+')
		negative = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++, any = true) {
		if (digits++ >= 9)
			return -ERANGE;
		m = m * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, any = true) {
			if (digits++ >= 9)
				return -ERANGE;
			m = m * 10 + (*p - '0');
			scale--;
		}
	}
	if (!any)
		return -EINVAL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			exp_sign = *p++ == '-' ? -1 : 1;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			exp = exp * 10 + (*p - '0');
			if (exp > 30)
				return -ERANGE;
		}
	}
	if (*p == '\n')
		p++;
	if (*p != '\0')
		return -EINVAL;
	*mantissa = negative ? -m : m;
	*exp10 = scale + exp_sign * exp;
	return 0;
}

static ssize_t store_number(struct cerebro_model *model, const char *buf, size_t count,
			    bool is_scale)
{
	char text[CEREBRO_NUM_LEN];
	s64 mantissa;
	int exp10, ret;
	u32 bits;

	if (count >= sizeof(text)) {
		model_error(model, "sysfs: number too long (%zu bytes)", count);
		return -EINVAL;
	}
	strscpy(text, buf, sizeof(text));
	ret = parse_decimal(text, &mantissa, &exp10);
	if (ret) {
		model_error(model, "sysfs: '%s' is not a decimal number (want e.g. 0.5, -1e-3)",
			    strim(text));
		return ret;
	}
	kernel_fpu_begin();
	bits = cerebro_fp_decimal(mantissa, exp10);
	kernel_fpu_end();
	spin_lock(&model->lock);
	if (is_scale) {
		model->opts.scale_bits = bits;
		strscpy(model->opts.scale_text, strim(text), CEREBRO_NUM_LEN);
	} else {
		model->opts.offset_bits = bits;
		strscpy(model->opts.offset_text, strim(text), CEREBRO_NUM_LEN);
	}
	spin_unlock(&model->lock);
	return count;
}

static ssize_t preprocess_scale_show(struct kobject *kobj, struct kobj_attribute *attr,
				     char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	char text[CEREBRO_NUM_LEN];

	spin_lock(&model->lock);
	strscpy(text, model->opts.scale_text, sizeof(text));
	spin_unlock(&model->lock);
	return sysfs_emit(buf, "%s\n", text);
}

static ssize_t preprocess_scale_store(struct kobject *kobj, struct kobj_attribute *attr,
				      const char *buf, size_t count)
{
	return store_number(to_model(kobj), buf, count, true);
}

static ssize_t preprocess_offset_show(struct kobject *kobj, struct kobj_attribute *attr,
				      char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	char text[CEREBRO_NUM_LEN];

	spin_lock(&model->lock);
	strscpy(text, model->opts.offset_text, sizeof(text));
	spin_unlock(&model->lock);
	return sysfs_emit(buf, "%s\n", text);
}

static ssize_t preprocess_offset_store(struct kobject *kobj, struct kobj_attribute *attr,
				       const char *buf, size_t count)
{
	return store_number(to_model(kobj), buf, count, false);
}

static ssize_t postprocess_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct cerebro_model *model = to_model(kobj);
	struct cerebro_options opts;

	spin_lock(&model->lock);
	opts = model->opts;
	spin_unlock(&model->lock);
	if (opts.post == CEREBRO_POST_TOPK)
		return sysfs_emit(buf, "topk %u\n", opts.topk);
	return sysfs_emit(buf, "%s\n", post_names[opts.post]);
}

/* "none", "softmax", "argmax" or "topk K"; checked against output 0. */
static ssize_t postprocess_store(struct kobject *kobj, struct kobj_attribute *attr,
				 const char *buf, size_t count)
{
	struct cerebro_model *model = to_model(kobj);
	struct cerebro_options opts = { .topk = 0 };
	struct cerebro_tensor_info info;
	char text[32], why[CEREBRO_MSG_LEN];
	char *word, *rest;
	u32 i;

	if (count >= sizeof(text)) {
		model_error(model, "sysfs: postprocess value too long");
		return -EINVAL;
	}
	strscpy(text, buf, sizeof(text));
	rest = strim(text);
	word = strsep(&rest, " ");
	opts.post = ARRAY_SIZE(post_names);
	for (i = 0; i < ARRAY_SIZE(post_names); i++) {
		if (strcmp(word, post_names[i]) == 0)
			opts.post = i;
	}
	if (opts.post == ARRAY_SIZE(post_names) ||
	    (opts.post == CEREBRO_POST_TOPK && (!rest || kstrtou32(rest, 10, &opts.topk))) ||
	    (opts.post != CEREBRO_POST_TOPK && rest)) {
		model_error(model, "sysfs: postprocess '%s' unknown (none, softmax, argmax, topk K)",
			    word);
		return -EINVAL;
	}
	if (cerebro_post_signature(&model->tensors[model->meta.num_inputs], &opts, &info,
				   why, sizeof(why))) {
		model_error(model, "sysfs: %s", why);
		return -EINVAL;
	}
	spin_lock(&model->lock);
	model->opts.post = opts.post;
	model->opts.topk = opts.topk;
	spin_unlock(&model->lock);
	return count;
}

#define RO(name) static struct kobj_attribute attr_##name = __ATTR_RO(name)
#define RW(name) static struct kobj_attribute attr_##name = __ATTR_RW(name)
RO(signature);
RO(name);
RO(hash);
RO(stages);
RO(max_stage_flops);
RO(fpu);
RO(users);
RW(calls);
RO(mean_latency_ns);
RO(max_fpu_section_ns);
static struct kobj_attribute attr_last_error = __ATTR(last_error, 0400, last_error_show, NULL);
RW(preprocess_scale);
RW(preprocess_offset);
RW(postprocess);

static struct attribute *model_attrs[] = {
	&attr_signature.attr, &attr_name.attr, &attr_hash.attr, &attr_stages.attr,
	&attr_max_stage_flops.attr, &attr_fpu.attr, &attr_users.attr, &attr_calls.attr, &attr_mean_latency_ns.attr,
	&attr_max_fpu_section_ns.attr, &attr_last_error.attr,
	&attr_preprocess_scale.attr, &attr_preprocess_offset.attr,
	&attr_postprocess.attr, NULL,
};
ATTRIBUTE_GROUPS(model);

static void model_release(struct kobject *kobj)
{
	struct cerebro_model *model = to_model(kobj);

	kfree(model->tensors);
	kfree(model);
}

static struct kobj_type model_ktype = {
	.release = model_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = model_groups,
};

/* ---- registration, exported to model modules ---- */

static int check_desc(const struct cerebro_model_desc *desc, struct cbx_meta *out)
{
	const u64 max_size = sizeof(struct cbx_meta) +
			     (u64)CBX_MAX_TENSORS * sizeof(struct cbx_tensor);
	struct cbx_error err = { 0 };
	char why[CEREBRO_MSG_LEN];
	u64 size;
	int ret;

	if (!desc || !desc->owner || !desc->meta || !desc->run_stage) {
		pr_err_ratelimited("model registration with an incomplete descriptor\n");
		return -EINVAL;
	}
	size = desc->meta->meta_size;
	if (size < sizeof(struct cbx_meta) || size > max_size) {
		pr_err_ratelimited("%s: meta_size %llu out of range\n", desc->owner->name, size);
		return -EINVAL;
	}
	if (cbx_meta_check((const u8 *)desc->meta, size, CEREBRO_MACHINE_SELF, out, &err)) {
		pr_err_ratelimited("%s: %s\n", desc->owner->name, err.msg);
		return -EINVAL;
	}
	ret = cerebro_cpu_check(out->features, why, sizeof(why));
	if (ret)
		pr_err_ratelimited("%s: model '%s' %s; not registered\n", desc->owner->name,
				   out->model_name, why);
	return ret;
}

int cerebro_register_model(const struct cerebro_model_desc *desc)
{
	struct cerebro_model *model, *other;
	u32 count;
	int ret;

	model = kzalloc(sizeof(*model), GFP_KERNEL);
	if (!model)
		return -ENOMEM;
	ret = check_desc(desc, &model->meta);
	if (ret) {
		kfree(model);
		return ret;
	}
	count = model->meta.num_inputs + model->meta.num_outputs;
	model->tensors = kmemdup(desc->meta->tensors, count * sizeof(struct cbx_tensor),
				 GFP_KERNEL);
	if (!model->tensors) {
		kfree(model);
		return -ENOMEM;
	}
	model->desc = desc;
	strscpy(model->module_name, desc->owner->name, sizeof(model->module_name));
	spin_lock_init(&model->lock);
	cerebro_error_init(&model->error);
	model->opts.scale_bits = CEREBRO_F32_ONE;
	strscpy(model->opts.scale_text, "1", CEREBRO_NUM_LEN);
	strscpy(model->opts.offset_text, "0", CEREBRO_NUM_LEN);
	kobject_init(&model->kobj, &model_ktype);

	mutex_lock(&cerebro_lock);
	list_for_each_entry(other, &cerebro_models, node) {
		if (memcmp(other->meta.hash, model->meta.hash, sizeof(model->meta.hash)) == 0) {
			pr_err_ratelimited("%s: same .cbx hash as the registered module %s\n",
					   model->module_name, other->module_name);
			ret = -EEXIST;
			goto fail;
		}
	}
	ret = kobject_add(&model->kobj, models_kobj, "%s", model->module_name);
	if (ret)
		goto fail;
	list_add_tail(&model->node, &cerebro_models);
	mutex_unlock(&cerebro_lock);
	pr_info_ratelimited("registered model '%s' from module %s (%u inputs, %u outputs, %u stages)\n",
			    model->meta.model_name, model->module_name, model->meta.num_inputs,
			    model->meta.num_outputs, model->meta.num_stages);
	return 0;
fail:
	mutex_unlock(&cerebro_lock);
	kobject_put(&model->kobj);
	return ret;
}
EXPORT_SYMBOL_GPL(cerebro_register_model);

void cerebro_unregister_model(const struct cerebro_model_desc *desc)
{
	struct cerebro_model *model, *found = NULL;

	mutex_lock(&cerebro_lock);
	list_for_each_entry(model, &cerebro_models, node) {
		if (model->desc == desc)
			found = model;
	}
	if (found)
		list_del(&found->node);
	mutex_unlock(&cerebro_lock);
	if (!found)
		return;
	/* users pin the owner module, so none can remain at module exit */
	pr_info_ratelimited("unregistered model module %s\n", found->module_name);
	kobject_del(&found->kobj);
	kobject_put(&found->kobj);
}
EXPORT_SYMBOL_GPL(cerebro_unregister_model);

int cerebro_registry_init(struct kobject *parent)
{
	models_kobj = kobject_create_and_add("models", parent);
	return models_kobj ? 0 : -ENOMEM;
}

void cerebro_registry_exit(void)
{
	kobject_put(models_kobj);
}
