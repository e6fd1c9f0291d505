// SPDX-License-Identifier: MIT
/*
 * What a program linked against the Universal CRT (ucrtbase / api-ms-win-crt-*, MinGW's
 * `-lucrt`) imports beyond the msvcrt names it shares: its startup (argv, environment, atexit,
 * app type), `__acrt_iob_func` for stdin/stdout/stderr, the `__stdio_common_*` printf entry points
 * all its printf-family functions go through, FILE locks, the time-zone variables, and
 * `__intrinsic_setjmpex`. Built on the msvcrt shims (found with find_shim), so both CRTs behave
 * the same. UCRT's FILE is opaque to programs: it is the same block msvcrt programs get.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shims.h"

typedef WINAPI int vsnprintf_fn(char *dst, size_t cap, const char *fmt, const win_slot *ap);

static void *msvcrt_shim(const char *name)
{
	void *fn = find_shim("msvcrt.dll", name);

	if (!fn)
		die(126, "UCRT: no msvcrt %s shim to build on", name);
	return fn;
}

/* ---- startup: argv and the environment as __getmainargs gives them; wide copies (Latin-1) on demand ---- */

static int argc_;
static char **argv_;
static uint16_t **wargv_, **wenviron_;

static void main_args(void)
{
	typedef WINAPI int getmainargs_fn(int *, char ***, char ***, int, void *);
	char **envp;

	if (!argv_)
		((getmainargs_fn *)msvcrt_shim("__getmainargs"))(&argc_, &argv_, &envp, 0, NULL);
}

static uint16_t **widen(char **list)
{
	size_t n = 0;
	uint16_t **out;

	while (list[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		size_t len = strlen(list[i]);

		out[i] = malloc((len + 1) * sizeof(uint16_t));
		if (!out[i])
			break;
		for (size_t k = 0; k <= len; k++)
			out[i][k] = (uint8_t)list[i][k];
	}
	if (!out || (n && !out[n - 1]))
		die(126, "UCRT: out of memory for the wide arguments");
	return out;
}

static WINAPI int s__configure_narrow_argv(int mode) { (void)mode; main_args(); return 0; }
static WINAPI int s__configure_wide_argv(int mode) { (void)mode; main_args(); wargv_ = widen(argv_); return 0; }
static WINAPI int s__initialize_narrow_environment(void) { return 0; }
static WINAPI int s__initialize_wide_environment(void) { wenviron_ = widen(environ); return 0; }
static WINAPI int *s___p___argc(void) { main_args(); return &argc_; }
static WINAPI char ***s___p___argv(void) { main_args(); return &argv_; }
static WINAPI uint16_t ***s___p___wargv(void) { return &wargv_; }	/* NULL until _configure_wide_argv */
static WINAPI char ***s___p__environ(void) { return &environ; }
static WINAPI uint16_t ***s___p__wenviron(void) { return &wenviron_; }

static WINAPI void s__set_app_type(int type) { (void)type; }	/* console or GUI: nothing differs here */

static int new_mode;	/* whether malloc failures call the new handler: there is none to call */
static WINAPI int s__set_new_mode(int mode) { int old = new_mode; new_mode = mode; return old; }

/* Functions the CRT would call on an invalid argument: the shims never detect one, so it is only kept. */
static void *invalid_parameter_handler;
static WINAPI void *s__set_invalid_parameter_handler(void *handler)
{
	void *old = invalid_parameter_handler;

	invalid_parameter_handler = handler;
	return old;
}

static WINAPI int s__crt_atexit(void *fn) { return ((WINAPI int (*)(void *))msvcrt_shim("atexit"))(fn); }

/* at_quick_exit functions run only from quick_exit, which no shim provides: registering succeeds. */
static WINAPI int s__crt_at_quick_exit(void *fn) { (void)fn; return 0; }

/* ---- stdio ---- */

static WINAPI void *s___acrt_iob_func(unsigned i)
{
	uint8_t *iob = ((WINAPI uint8_t *(*)(void))msvcrt_shim("__iob_func"))();

	if (i > 2)
		die(126, "__acrt_iob_func(%u): only stdin, stdout and stderr (0-2) exist", i);
	return iob + i * (sizeof(void *) == 8 ? 48 : 32);	/* msvcrt's FILE size: host_file knows these */
}

static WINAPI void s__lock_file(void *f) { flockfile(host_file(f)); }
static WINAPI void s__unlock_file(void *f) { funlockfile(host_file(f)); }

/* The formatted text (malloc'd, *len bytes) of fmt and ap, by msvcrt's _vsnprintf shim. */
static char *format(const char *fmt, const win_slot *ap, size_t *len)
{
	vsnprintf_fn *print = msvcrt_shim("_vsnprintf");

	for (size_t cap = 256;; cap *= 2) {
		char *buf = malloc(cap);
		int n;

		if (!buf)
			die(126, "printf: out of memory");
		n = print(buf, cap, fmt, ap);	/* -1 when it did not fit (the shim stops past 256 MiB) */
		if (n >= 0 && (size_t)n < cap) {
			*len = (size_t)n;
			return buf;
		}
		free(buf);
	}
}

enum {	/* _CRT_INTERNAL_PRINTF_* option bits */
	LEGACY_VSPRINTF_NULL_TERMINATION = 1, STANDARD_SNPRINTF_BEHAVIOR = 2, LEGACY_WIDE_SPECIFIERS = 4,
};

static WINAPI int s___stdio_common_vfprintf(uint64_t options, void *f, const char *fmt, void *locale,
					    const win_slot *ap)
{
	size_t len;
	char *text = format(fmt, ap, &len);
	size_t written = fwrite(text, 1, len, host_file(f));

	(void)options, (void)locale;
	free(text);
	return written == len ? (int)len : -1;
}

/*
 * vsprintf/vsnprintf/_vsnprintf/_vscprintf in one: with STANDARD_SNPRINTF_BEHAVIOR it is C99's
 * vsnprintf (the full length, always terminated); without it, text that does not fit gives -1
 * (terminated at the end of the buffer only with LEGACY_VSPRINTF_NULL_TERMINATION). A NULL buffer
 * of size 0 asks for the length.
 */
static WINAPI int s___stdio_common_vsprintf(uint64_t options, char *buf, size_t count, const char *fmt,
					    void *locale, const win_slot *ap)
{
	size_t len;
	char *text = format(fmt, ap, &len);
	int standard = options & STANDARD_SNPRINTF_BEHAVIOR, r = (int)len;

	(void)locale;
	if (buf && count) {
		int terminate = standard || (options & LEGACY_VSPRINTF_NULL_TERMINATION);

		memcpy(buf, text, len < count ? len : count);
		if (len < count)
			buf[len] = 0;
		else if (terminate)
			buf[count - 1] = 0;	/* truncated and terminated; else count bytes and no NUL */
		if (!standard && (len > count || (len == count && terminate)))
			r = -1;
	} else if (buf || count) {
		errno = EINVAL;
		r = -1;
	}
	free(text);
	return r;
}

/*
 * Wide printf: the format (16-bit units) is narrowed and handed to the narrow formatter. In a wide
 * format %s and %c take wide arguments, %hs/%hc and %S/%C narrow ones (Microsoft's rule, which
 * MinGW's UCRT options keep); text is written as bytes, units above 0xff as '?'.
 */
static char *narrow_format(const uint16_t *fmt)
{
	size_t n = 0, at = 0;
	char *out;

	while (fmt[n])
		n++;
	out = malloc(2 * n + 1);	/* each %s/%c gains one letter */
	if (!out)
		die(126, "wprintf: out of memory");
	for (size_t i = 0; i < n; i++) {
		char c = fmt[i] < 0x100 ? (char)fmt[i] : '?';

		if (c == '%' && i + 1 < n && fmt[i + 1] == '%') {
			out[at++] = '%';
			out[at++] = '%';
			i++;
			continue;
		}
		if (c != '%') {
			out[at++] = c;
			continue;
		}
		out[at++] = '%';
		while (i + 1 < n && fmt[i + 1] < 0x80 && strchr("-+ #0123456789.*", (char)fmt[i + 1]))
			out[at++] = (char)fmt[++i];
		if (i + 1 < n && (fmt[i + 1] == 'h' || fmt[i + 1] == 'l' || fmt[i + 1] == 'w') && i + 2 < n &&
		    (fmt[i + 2] == 's' || fmt[i + 2] == 'c')) {
			int wide = fmt[i + 1] != 'h';

			out[at++] = wide ? 'l' : fmt[i + 2];
			if (wide)
				out[at++] = (char)fmt[i + 2];
			i += 2;
		} else if (i + 1 < n && (fmt[i + 1] == 's' || fmt[i + 1] == 'c')) {
			out[at++] = 'l';
			out[at++] = (char)fmt[++i];
		} else if (i + 1 < n && (fmt[i + 1] == 'S' || fmt[i + 1] == 'C')) {
			out[at++] = (char)(fmt[++i] + 32);	/* narrow */
		}
	}
	out[at] = 0;
	return out;
}

static WINAPI int s___stdio_common_vfwprintf(uint64_t options, void *f, const uint16_t *fmt, void *locale,
					     const win_slot *ap)
{
	char *narrow = narrow_format(fmt);
	int r = s___stdio_common_vfprintf(options, f, narrow, locale, ap);

	free(narrow);
	return r;
}

/* ---- time zone: local time is UTC (crt.c), so there is no daylight saving and no offset ---- */

static int daylight_;
static int32_t timezone_;	/* a Windows long */
static char utc[] = "UTC";
static char *tzname_[2] = { utc, utc };

static WINAPI int *s___daylight(void) { return &daylight_; }
static WINAPI int32_t *s___timezone(void) { return &timezone_; }
static WINAPI char **s___tzname(void) { return tzname_; }
static WINAPI void s__tzset(void) { }

const struct shim ucrt_shims[] = {
	M("_configure_narrow_argv", s__configure_narrow_argv), M("_configure_wide_argv", s__configure_wide_argv),
	M("_initialize_narrow_environment", s__initialize_narrow_environment),
	M("_initialize_wide_environment", s__initialize_wide_environment),
	M("__p___argc", s___p___argc), M("__p___argv", s___p___argv), M("__p___wargv", s___p___wargv),
	M("__p__environ", s___p__environ), M("__p__wenviron", s___p__wenviron), M("_set_app_type", s__set_app_type),
	M("_set_new_mode", s__set_new_mode), M("_set_invalid_parameter_handler", s__set_invalid_parameter_handler),
	M("_crt_atexit", s__crt_atexit), M("_crt_at_quick_exit", s__crt_at_quick_exit),
	M("__acrt_iob_func", s___acrt_iob_func), M("_lock_file", s__lock_file), M("_unlock_file", s__unlock_file),
	M("__stdio_common_vfprintf", s___stdio_common_vfprintf),
	M("__stdio_common_vsprintf", s___stdio_common_vsprintf),
	M("__stdio_common_vfwprintf", s___stdio_common_vfwprintf),
	M("__daylight", s___daylight), M("__timezone", s___timezone), M("__tzname", s___tzname), M("_tzset", s__tzset),
};

SHIM_TABLE_SIZE(ucrt);
