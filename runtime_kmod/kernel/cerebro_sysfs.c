// SPDX-License-Identifier: MIT
/*
 * /sys/kernel/cerebro/: the default model (writing model_path loads it with
 * the same checks as LOAD_MODEL and pins it; writing an empty line releases
 * it), unload (a module name: release that model's default pin, refused
 * while handles use it), last_error, the version.
 * model_path and last_error hold callers' paths, so only root reads them.
 *
 * last_error here is sysfs's own: the last refused write to model_path or
 * unload (both root-only). /dev/cerebro callers keep theirs per open file
 * (LAST_ERROR), so nothing they do shows here and nothing here shows there.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/limits.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "cerebro_internal.h"

static struct kobject *cerebro_kobj;
static struct cerebro_model *default_model;	/* under cerebro_lock */
static char default_path[PATH_MAX];		/* under cerebro_lock */
static struct cerebro_error sysfs_error;	/* refused writes to model_path and unload */

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

	cerebro_error_read(&sysfs_error, msg, sizeof(msg));
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
	char *text, *path;

	if (count >= PATH_MAX) {
		cerebro_report(&sysfs_error, NULL, "model_path: path too long (%zu bytes)", count);
		return -ENAMETOOLONG;
	}
	text = kstrndup(buf, count, GFP_KERNEL);
	if (!text)
		return -ENOMEM;
	path = strim(text);
	if (path[0] != '\0') {
		model = cerebro_load_path(path, &sysfs_error);
		if (IS_ERR(model)) {
			kfree(text);
			return PTR_ERR(model);
		}
	}
	mutex_lock(&cerebro_lock);
	old = default_model;
	default_model = model;
	strscpy(default_path, path, sizeof(default_path));
	mutex_unlock(&cerebro_lock);
	kfree(text);
	if (old)
		cerebro_model_put(old);
	return count;
}

/*
 * A model found by name is not pinned: rmmod may free it as soon as
 * cerebro_lock is dropped, so everything that touches it happens under the
 * lock (the refusal names it by the caller's @name, not through it).
 */
static ssize_t unload_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	struct cerebro_model *model;
	char text[MODULE_NAME_LEN], *name;
	ssize_t ret = count;
	int users;

	if (count >= sizeof(text)) {
		cerebro_report(&sysfs_error, NULL, "unload: name too long");
		return -EINVAL;
	}
	strscpy(text, buf, sizeof(text));
	name = strim(text);
	mutex_lock(&cerebro_lock);
	model = cerebro_model_find_by_name(name);
	users = model ? model->users - (model == default_model ? 1 : 0) : 0;
	if (!model) {
		cerebro_report(&sysfs_error, NULL, "unload: no model module named '%s'", name);
		ret = -ENOENT;
	} else if (users > 0) {
		cerebro_report(&sysfs_error, NULL, "unload %s refused: in use by %d handle(s); close them first",
			       name, users);
		ret = -EBUSY;
	} else if (model != default_model) {
		cerebro_report(&sysfs_error, NULL, "unload %s: not loaded (no handle, not the default model)",
			       name);
		ret = -EINVAL;
	} else {
		default_model = NULL;
		default_path[0] = '\0';
	}
	mutex_unlock(&cerebro_lock);
	if (ret < 0)
		return ret;
	cerebro_model_put(model);	/* the default pin kept it valid until here */
	pr_info_ratelimited("%s: unloaded; rmmod may remove it now\n", name);
	return count;
}

static struct kobj_attribute attr_version = __ATTR_RO(version);
static struct kobj_attribute attr_last_error = __ATTR(last_error, 0400, last_error_show, NULL);
static struct kobj_attribute attr_model_path = __ATTR(model_path, 0600, model_path_show,
						      model_path_store);
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

	cerebro_error_init(&sysfs_error);
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
