// SPDX-License-Identifier: MIT
/*
 * Refusals: every refused call records one line saying why in a last_error
 * (global or per model, root-only in sysfs). Callers choose much of that
 * text (paths, names), and can refuse themselves as often as they like, so
 * the line is escaped (no control characters: a newline in a path cannot
 * forge a log line) and the kernel log gets it rate-limited.
 */
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/ratelimit.h>
#include <linux/string.h>
#include <linux/string_helpers.h>

#include "cerebro_internal.h"

/* At most 10 lines per 5 s for all callers together. */
static DEFINE_RATELIMIT_STATE(log_ratelimit, 5 * HZ, 10);

void cerebro_vreport(const char *who, char *last_error, spinlock_t *lock,
		     const char *fmt, va_list args)
{
	char raw[CEREBRO_MSG_LEN], msg[CEREBRO_MSG_LEN];
	int len;

	vsnprintf(raw, sizeof(raw), fmt, args);
	/* printable ASCII passes, every other byte becomes \xNN */
	len = string_escape_str(raw, msg, sizeof(msg) - 1, ESCAPE_NAP | ESCAPE_HEX, NULL);
	msg[min_t(int, len, sizeof(msg) - 1)] = '\0';
	spin_lock(lock);
	strscpy(last_error, msg, CEREBRO_MSG_LEN);
	spin_unlock(lock);
	if (__ratelimit(&log_ratelimit))
		pr_warn("cerebro: %s%s%s\n", who ? who : "", who ? ": " : "", msg);
}
