// SPDX-License-Identifier: MIT
/*
 * /sys/kernel/cerebro/: the default model (writing model_path loads it with
 * the same checks as LOAD_MODEL and pins it; writing an empty line releases
 * it), unload (a module name: release that model's default pin, refused
 * while handles use it), the last error outside any model, the version.
 */
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/limits.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "cerebro_internal.h"

static struct kobject *cerebro_kobj;
static struct cerebro_model *default_model;	/* under cerebro_lock */
static char default_path[PATH_MAX];		/* under cerebro_lock */
static DEFINE_SPINLOCK(error_lock);
static char global_error[CEREBRO_MSG_LEN];

void cerebro_global_error(const char *fmt, ...)
{
	char msg[CEREBRO_MSG_LEN];
	va_list args;

	va_start(args, fmt);
	vsnprintf(msg, sizeof(msg), fmt, args);
	va_end(args);
	pr_warn("cerebro: %s\n", msg);
	spin_lock(&error_lock);
	strscpy(global_error, msg, sizeof(global_error));
	spin_unlock(&error_lock);
}

/* The default model with a new user reference, or NULL. */
struct cerebro_model *cerebro_default_get(void)
{
	struct cerebro_model *model;

	mutex_lock(&cerebro_lock);
	model = default_model;
	if (model && try_module_get(model->desc->owner))
		model->users++;
	else
		model = NULL;
	mutex_unlock(&cerebro_lock);
	return model;
}

static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", CEREBRO_UAPI_VERSION);
}

static ssize_t last_error_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	char msg[CEREBRO_MSG_LEN];

	spin_lock(&error_lock);
	strscpy(msg, global_error, sizeof(msg));
	spin_unlock(&error_lock);
	return sysfs_emit(buf, "%s\n", msg);
}

static ssize_t model_path_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	ssize_t len;

	mutex_lock(&cerebro_lock);
	len = sysfs_emit(buf, "%s\n", default_path);
	mutex_unlock(&cerebro_lock);
	return len;
}

static ssize_t model_path_store(struct kobject *kobj, struct kobj_attribute *attr,
				const char *buf, size_t count)
{
	struct cerebro_model *model = NULL, *old;
	char *path;

	if (count >= PATH_MAX) {
		cerebro_global_error("model_path: path too long (%zu bytes)", count);
		return -ENAMETOOLONG;
	}
	path = kstrndup(buf, count, GFP_KERNEL);
	if (!path)
		return -ENOMEM;
	strim(path);
	if (path[0] != '\0') {
		model = cerebro_load_path(path);
		if (IS_ERR(model)) {
			kfree(path);
			return PTR_ERR(model);
		}
	}
	mutex_lock(&cerebro_lock);
	old = default_model;
	default_model = model;
	strscpy(default_path, path, sizeof(default_path));
	mutex_unlock(&cerebro_lock);
	kfree(path);
	if (old)
		cerebro_model_put(old);
	return count;
}

static ssize_t unload_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	struct cerebro_model *model;
	char name[MODULE_NAME_LEN];
	int users;

	if (count >= sizeof(name)) {
		cerebro_global_error("unload: name too long");
		return -EINVAL;
	}
	strscpy(name, buf, sizeof(name));
	strim(name);
	mutex_lock(&cerebro_lock);
	model = cerebro_model_find_by_name(strim(name));
	if (!model) {
		mutex_unlock(&cerebro_lock);
		cerebro_global_error("unload: no model module named '%s'", strim(name));
		return -ENOENT;
	}
	users = model->users - (model == default_model ? 1 : 0);
	if (users > 0) {
		mutex_unlock(&cerebro_lock);
		cerebro_model_error(model, "unload refused: in use by %d handle(s); close them first",
				    users);
		return -EBUSY;
	}
	if (model != default_model) {
		mutex_unlock(&cerebro_lock);
		cerebro_model_error(model, "unload: not loaded (no handle, not the default model)");
		return -EINVAL;
	}
	default_model = NULL;
	default_path[0] = '\0';
	mutex_unlock(&cerebro_lock);
	cerebro_model_put(model);
	pr_info("cerebro: %s: unloaded; rmmod may remove it now\n", name);
	return count;
}

static struct kobj_attribute attr_version = __ATTR_RO(version);
static struct kobj_attribute attr_last_error = __ATTR_RO(last_error);
static struct kobj_attribute attr_model_path = __ATTR_RW(model_path);
static struct kobj_attribute attr_unload = __ATTR_WO(unload);

static struct attribute *cerebro_attrs[] = {
	&attr_version.attr, &attr_last_error.attr, &attr_model_path.attr,
	&attr_unload.attr, NULL,
};

static const struct attribute_group cerebro_group = {
	.attrs = cerebro_attrs,
};

int cerebro_sysfs_init(void)
{
	int ret;

	cerebro_kobj = kobject_create_and_add("cerebro", kernel_kobj);
	if (!cerebro_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(cerebro_kobj, &cerebro_group);
	if (!ret)
		ret = cerebro_registry_init(cerebro_kobj);
	if (ret)
		kobject_put(cerebro_kobj);
	return ret;
}

void cerebro_sysfs_exit(void)
{
	struct cerebro_model *model;

	mutex_lock(&cerebro_lock);
	model = default_model;
	default_model = NULL;
	mutex_unlock(&cerebro_lock);
	if (model)
		cerebro_model_put(model);
	cerebro_registry_exit();
	kobject_put(cerebro_kobj);
}
