// SPDX-License-Identifier: MIT
/*
 * Refusals: every refused call records one line saying why in the
 * struct cerebro_error of whoever asked: the open file of /dev/cerebro
 * (read back with LAST_ERROR), or the sysfs directory of the file written
 * (its last_error, root-only). Callers choose much of that text (paths,
 * names), and can refuse themselves as often as they like, so the line is
 * escaped (no control characters: a newline in a path cannot forge a log
 * line) and the kernel log gets it rate-limited.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/ratelimit.h>
#include <linux/string.h>
#include <linux/string_helpers.h>

#include "cerebro_internal.h"

/* At most 10 lines per 5 s for all callers together. */
static DEFINE_RATELIMIT_STATE(log_ratelimit, 5 * HZ, 10);

void cerebro_error_init(struct cerebro_error *error)
{
	spin_lock_init(&error->lock);
	error->reports = 0;
	error->errno_value = 0;
	error->msg[0] = '\0';
}

static void store(struct cerebro_error *error, const char *msg)
{
	spin_lock(&error->lock);
	strscpy(error->msg, msg, sizeof(error->msg));
	error->reports++;
	spin_unlock(&error->lock);
}

void cerebro_vreport(struct cerebro_error *error, const char *who, const char *fmt,
		     va_list args)
{
	char raw[CEREBRO_MSG_LEN], msg[CEREBRO_MSG_LEN];
	int len = 0;

	if (who)
		len = scnprintf(raw, sizeof(raw), "%s: ", who);
	vsnprintf(raw + len, sizeof(raw) - len, fmt, args);
	/* printable ASCII passes, every other byte becomes \xNN */
	len = string_escape_str(raw, msg, sizeof(msg) - 1, ESCAPE_NAP | ESCAPE_HEX, NULL);
	msg[min_t(int, len, sizeof(msg) - 1)] = '\0';
	store(error, msg);
	if (__ratelimit(&log_ratelimit))
		pr_warn("%s\n", msg);
}

void cerebro_report(struct cerebro_error *error, const char *who, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	cerebro_vreport(error, who, fmt, args);
	va_end(args);
}

u32 cerebro_error_reports(struct cerebro_error *error)
{
	u32 reports;

	spin_lock(&error->lock);
	reports = error->reports;
	spin_unlock(&error->lock);
	return reports;
}

/*
 * Every refusal a caller can cause says why where it happens; this keeps
 * the errno with it, and covers the few that need no words (a killed
 * caller's EINTR) so LAST_ERROR never pairs one call's errno with an
 * older call's reason.
 */
void cerebro_error_failed(struct cerebro_error *error, u32 reports, const char *op, int err)
{
	spin_lock(&error->lock);
	if (error->reports == reports) {
		snprintf(error->msg, sizeof(error->msg), "%s: failed with errno %d", op, -err);
		error->reports++;
	}
	error->errno_value = -err;
	spin_unlock(&error->lock);
}

/* Copies the last line into @msg; returns its errno (0 if none or not kept). */
int cerebro_error_read(struct cerebro_error *error, char *msg, size_t len)
{
	int errno_value;

	spin_lock(&error->lock);
	strscpy(msg, error->msg, len);
	errno_value = error->errno_value;
	spin_unlock(&error->lock);
	return errno_value;
}
