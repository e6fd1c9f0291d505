// SPDX-License-Identifier: MIT
/*
 * The command channel of /dev/cerebro: what the ioctls do, as text lines
 * written to the device, so that a shell with no special tool can drive it.
 *
 *   LOAD_MODEL [PATH]  load PATH (no PATH: the default model from sysfs)
 *   EXECUTE_MODEL      then the inputs' raw bytes, in signature order
 *   GET_RESULTS        then read() returns the outputs' raw bytes, then EOF
 *   INFO               then read() returns the signature as text, then EOF
 *   UNLOAD_MODEL       release the model
 *
 * Each open file has one channel with its own handle, apart from the
 * ioctls' handles. It shares their code and checks (cerebro_main.c): the
 * same load, sizes from the signature only, the same run with its killable
 * stages, refusals in the file's LAST_ERROR and the rate-limited log.
 *
 * After EXECUTE_MODEL the bytes written are input bytes, however the writes
 * split them, until the signature's total has arrived; then the model runs.
 * More bytes in that same write must start a command line, else the write
 * is refused and the inputs dropped: that catches a wrong byte count unless
 * the count is short by at least the whole next command (docs/kernel.md).
 * A refused write drops an unfinished command line and unfinished inputs,
 * so the channel is always ready for a command after one.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "cerebro_internal.h"

/* A command line with its newline: "LOAD_MODEL " and a path of PATH_MAX - 1 bytes fit. */
#define CMD_LINE_MAX (PATH_MAX + 32)
/* Bytes of a write read per step while looking for a newline; those after it are read again. */
#define LINE_STEP 128
/* Input bytes copied per step, with a chance to reschedule and die in between. */
#define INPUT_STEP SZ_1M

enum reply_kind { REPLY_NONE, REPLY_TEXT, REPLY_RESULTS };

struct cerebro_cmd {
	struct cerebro_handle *handle;	/* NULL before LOAD_MODEL */
	bool receiving;			/* EXECUTE_MODEL is taking input bytes */
	u32 input;			/* the input being filled, */
	u64 input_at;			/* its bytes so far */
	u64 received, needed;		/* bytes of all inputs */
	enum reply_kind reply;		/* what read() returns */
	char *text;			/* INFO's reply */
	u64 reply_at, reply_len;
	size_t line_len;		/* bytes of an unfinished line in @line */
	char line[CMD_LINE_MAX];
};

static void reply_clear(struct cerebro_cmd *cmd)
{
	kvfree(cmd->text);
	cmd->text = NULL;
	cmd->reply = REPLY_NONE;
	cmd->reply_at = 0;
	cmd->reply_len = 0;
}

static const char *module_of(const struct cerebro_cmd *cmd)
{
	return cmd->handle ? cmd->handle->model->module_name : NULL;
}

/* ---- the commands ---- */

static int cmd_load(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *path)
{
	struct cerebro_handle *h = cerebro_handle_open(cf, *path ? path : NULL);

	if (IS_ERR(h))
		return PTR_ERR(h);	/* the model loaded before, if any, stays */
	reply_clear(cmd);
	cerebro_handle_destroy(cmd->handle);
	cmd->handle = h;
	return 0;
}

static int cmd_execute(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *arg)
{
	const struct cerebro_model *model = cmd->handle->model;
	u32 i;

	reply_clear(cmd);
	cmd->handle->has_results = false;	/* a failed call leaves no stale results */
	cmd->receiving = true;
	cmd->input = 0;
	cmd->input_at = 0;
	cmd->received = 0;
	cmd->needed = 0;
	for (i = 0; i < model->meta.num_inputs; i++)
		cmd->needed += model->tensors[i].nbytes;
	return 0;
}

static int cmd_get_results(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *arg)
{
	struct cerebro_handle *h = cmd->handle;
	u64 total = 0, nbytes;
	u32 i;

	if (!h->has_results) {
		cerebro_report(&cf->error, module_of(cmd),
			       "GET_RESULTS: no results (EXECUTE_MODEL and all its input bytes first)");
		return -ENODATA;
	}
	for (i = 0; i < h->model->meta.num_outputs; i++) {
		cerebro_handle_output(h, i, &nbytes);
		total += nbytes;
	}
	reply_clear(cmd);
	cmd->reply = REPLY_RESULTS;
	cmd->reply_len = total;
	return 0;
}

/* The signature as MODEL_INFO gives it, one line per tensor as in sysfs. */
static int cmd_info(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *arg)
{
	struct cerebro_model *model = cmd->handle->model;
	u32 nin = model->meta.num_inputs, count = nin + model->meta.num_outputs, i;
	size_t size = (size_t)(count + 1) * CEREBRO_TENSOR_LINE, len;
	struct cerebro_options opts;
	struct cerebro_tensor_info rec;
	struct cbx_tensor t;
	char *text;

	text = kvmalloc(size, GFP_KERNEL_ACCOUNT);
	if (!text) {
		cerebro_report(&cf->error, model->module_name, "INFO: out of memory for the text");
		return -ENOMEM;
	}
	spin_lock(&model->lock);
	opts = model->opts;
	spin_unlock(&model->lock);
	len = scnprintf(text, size, "model %s\nmodule %s\nhash %32phN\nstages %u\n",
			model->meta.model_name, model->module_name, model->meta.hash,
			model->meta.num_stages);
	for (i = 0; i < count; i++) {
		cerebro_tensor_record(model, &opts, i, &rec);
		BUILD_BUG_ON(sizeof(rec) != sizeof(t));
		memcpy(&t, &rec, sizeof(t));
		len += cerebro_format_tensor(text + len, size - len, i < nin ? "input" : "output", &t);
	}
	reply_clear(cmd);
	cmd->text = text;
	cmd->reply = REPLY_TEXT;
	cmd->reply_len = len;
	return 0;
}

static int cmd_unload(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *arg)
{
	reply_clear(cmd);
	cerebro_handle_destroy(cmd->handle);
	cmd->handle = NULL;
	return 0;
}

static const struct {
	const char *name;
	bool takes_path;	/* else no argument */
	bool needs_model;
	int (*run)(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char *arg);
} commands[] = {
	{ "LOAD_MODEL", true, false, cmd_load },
	{ "EXECUTE_MODEL", false, true, cmd_execute },
	{ "GET_RESULTS", false, true, cmd_get_results },
	{ "INFO", false, true, cmd_info },
	{ "UNLOAD_MODEL", false, true, cmd_unload },
};

static int find_command(const char *name)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return i;
	}
	return -1;
}

/* @line: @len bytes and a NUL where its newline was. */
static int run_line(struct cerebro_file *cf, struct cerebro_cmd *cmd, char *line, size_t len)
{
	char *arg = strchr(line, ' ');
	int i;

	if (strlen(line) != len) {
		cerebro_report(&cf->error, NULL, "write: a command line holds a NUL byte");
		return -EINVAL;
	}
	if (arg)
		*arg++ = '\0';
	arg = strim(arg ? arg : line + len);
	i = find_command(line);
	if (i < 0) {
		cerebro_report(&cf->error, NULL,
			       "write: unknown command '%.40s' (LOAD_MODEL, EXECUTE_MODEL, GET_RESULTS, INFO, UNLOAD_MODEL)",
			       line);
		return -EINVAL;
	}
	if (!commands[i].takes_path && *arg) {
		cerebro_report(&cf->error, NULL, "%s takes no argument (got '%.40s')", line, arg);
		return -EINVAL;
	}
	if (commands[i].needs_model && !cmd->handle) {
		cerebro_report(&cf->error, NULL,
			       "%s: no model loaded through this file's command channel (LOAD_MODEL PATH first)",
			       line);
		return -ENOENT;
	}
	return commands[i].run(cf, cmd, arg);
}

/* ---- writing: command lines and input bytes ---- */

/* Reads the next line of the write at @src; returns the bytes it used. */
static long take_line(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char __user *src,
		      size_t len)
{
	size_t n = min3(len, (size_t)LINE_STEP, sizeof(cmd->line) - cmd->line_len);
	char *start = cmd->line + cmd->line_len, *newline;
	int ret;

	if (copy_from_user(start, src, n)) {
		cerebro_report(&cf->error, NULL, "write: bad buffer pointer");
		return -EFAULT;
	}
	newline = memchr(start, '\n', n);
	if (!newline) {
		cmd->line_len += n;
		if (cmd->line_len < sizeof(cmd->line))
			return n;	/* the line goes on in the next step or write */
		cerebro_report(&cf->error, NULL, "write: a command line is longer than %d bytes",
			       CMD_LINE_MAX - 1);
		return -EMSGSIZE;
	}
	*newline = '\0';
	cmd->line_len = 0;
	ret = run_line(cf, cmd, cmd->line, newline - cmd->line);
	return ret ? ret : newline - start + 1;
}

/* Copies input bytes from @src into the handle's input buffers; returns how many. */
static long take_input(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char __user *src,
		       size_t len)
{
	struct cerebro_handle *h = cmd->handle;
	const struct cbx_tensor *t;
	u64 n;

	/* received < needed, so an input with room is ahead */
	while (cmd->input_at == h->model->tensors[cmd->input].nbytes) {
		cmd->input++;
		cmd->input_at = 0;
	}
	t = &h->model->tensors[cmd->input];
	n = min3((u64)len, t->nbytes - cmd->input_at, (u64)INPUT_STEP);
	if (copy_from_user((u8 *)h->inputs[cmd->input] + cmd->input_at, src, n)) {
		cerebro_report(&cf->error, module_of(cmd),
			       "EXECUTE_MODEL: bad pointer for the bytes of input %u ('%s')",
			       cmd->input, t->name);
		return -EFAULT;
	}
	cmd->input_at += n;
	cmd->received += n;
	return n;
}

/*
 * The inputs are complete. Bytes after them in the same write must start a
 * command line: anything else means the caller sent more bytes than the
 * signature holds (or fewer, and then a command), so nothing runs.
 */
static int inputs_done(struct cerebro_file *cf, struct cerebro_cmd *cmd, const char __user *rest,
		       size_t len)
{
	size_t n = min(len, sizeof(cmd->line));
	char *newline, *space;

	cmd->receiving = false;
	if (len) {
		if (copy_from_user(cmd->line, rest, n)) {
			cerebro_report(&cf->error, NULL, "write: bad buffer pointer");
			return -EFAULT;
		}
		newline = memchr(cmd->line, '\n', n);
		if (newline) {
			*newline = '\0';
			space = strchr(cmd->line, ' ');
			if (space)
				*space = '\0';
		}
		if (!newline || find_command(cmd->line) < 0) {
			cerebro_report(&cf->error, module_of(cmd),
				       "EXECUTE_MODEL: %zu bytes after the inputs' %llu are not a command line (wrong byte count?); inputs dropped",
				       len, cmd->needed);
			return -EINVAL;
		}
	}
	return cerebro_handle_run(cf, cmd->handle, ktime_get_ns());
}

static ssize_t write_locked(struct cerebro_file *cf, struct cerebro_cmd *cmd,
			    const char __user *buf, size_t count)
{
	size_t done = 0;
	long ret;

	while (done < count) {
		if (fatal_signal_pending(current)) {
			cerebro_report(&cf->error, NULL, "write: killed after %zu of %zu bytes", done,
				       count);
			return -EINTR;
		}
		if (cmd->receiving)
			ret = take_input(cf, cmd, buf + done, count - done);
		else
			ret = take_line(cf, cmd, buf + done, count - done);
		if (ret < 0)
			return ret;
		done += ret;
		if (cmd->receiving && cmd->received == cmd->needed) {
			ret = inputs_done(cf, cmd, buf + done, count - done);
			if (ret < 0)
				return ret;
		}
		cond_resched();
	}
	return count;
}

ssize_t cerebro_cmd_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	struct cerebro_file *cf = file->private_data;
	u32 reports = cerebro_error_reports(&cf->error);
	ssize_t ret;

	ret = cerebro_file_lock(cf, "write");
	if (ret)
		goto out;
	if (!cf->cmd)
		cf->cmd = kzalloc(sizeof(*cf->cmd), GFP_KERNEL_ACCOUNT);
	if (!cf->cmd) {
		cerebro_report(&cf->error, NULL, "write: out of memory for the command channel");
		ret = -ENOMEM;
	} else {
		ret = write_locked(cf, cf->cmd, buf, count);
		if (ret < 0) {	/* ready for a command again */
			cf->cmd->line_len = 0;
			cf->cmd->receiving = false;
		}
	}
	mutex_unlock(&cf->lock);
out:
	if (ret < 0)
		cerebro_error_failed(&cf->error, reports, "write", ret);
	return ret;
}

/* ---- reading a reply ---- */

static int copy_results(struct cerebro_cmd *cmd, char __user *dst, u64 n)
{
	struct cerebro_handle *h = cmd->handle;
	u64 at = cmd->reply_at, start = 0, nbytes;
	u32 i;

	for (i = 0; i < h->model->meta.num_outputs && n; i++, start += nbytes) {
		const u8 *src = cerebro_handle_output(h, i, &nbytes);
		u64 skip, take;

		if (at >= start + nbytes)
			continue;
		skip = at - start;
		take = min(n, nbytes - skip);
		if (copy_to_user(dst, src + skip, take))
			return -EFAULT;
		dst += take;
		at += take;
		n -= take;
	}
	return 0;
}

static ssize_t read_locked(struct cerebro_file *cf, struct cerebro_cmd *cmd, char __user *buf,
			   size_t count)
{
	u64 n;

	if (!cmd || cmd->reply == REPLY_NONE) {
		if (cmd && cmd->receiving)
			cerebro_report(&cf->error, module_of(cmd),
				       "read: EXECUTE_MODEL still waits for %llu of its %llu input bytes",
				       cmd->needed - cmd->received, cmd->needed);
		else
			cerebro_report(&cf->error, NULL,
				       "read: nothing to read (write GET_RESULTS or INFO first)");
		return -ENODATA;
	}
	if (cmd->reply_at == cmd->reply_len) {
		reply_clear(cmd);	/* one EOF per reply */
		return 0;
	}
	n = min((u64)count, cmd->reply_len - cmd->reply_at);
	if (cmd->reply == REPLY_TEXT ? copy_to_user(buf, cmd->text + cmd->reply_at, n) :
	    copy_results(cmd, buf, n)) {
		cerebro_report(&cf->error, module_of(cmd), "read: bad buffer pointer");
		return -EFAULT;
	}
	cmd->reply_at += n;
	return n;
}

ssize_t cerebro_cmd_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	struct cerebro_file *cf = file->private_data;
	u32 reports = cerebro_error_reports(&cf->error);
	ssize_t ret;

	if (!count)
		return 0;
	ret = cerebro_file_lock(cf, "read");
	if (ret)
		goto out;
	ret = read_locked(cf, cf->cmd, buf, count);
	mutex_unlock(&cf->lock);
out:
	if (ret < 0)
		cerebro_error_failed(&cf->error, reports, "read", ret);
	return ret;
}

void cerebro_cmd_release(struct cerebro_file *cf)
{
	struct cerebro_cmd *cmd = cf->cmd;

	if (!cmd)
		return;
	kvfree(cmd->text);
	cerebro_handle_destroy(cmd->handle);
	kfree(cmd);
}
