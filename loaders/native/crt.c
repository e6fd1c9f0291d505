// SPDX-License-Identifier: MIT
/*
 * msvcrt functions beyond printf/stdio basics that classic console programs import: ctype (the
 * Windows _pctype table and its masks), time (64-bit time_t, UTC), the scanf family (msvcrt's
 * format sizes translated to glibc's), strtod/atof/strtok/memchr/ungetc, setjmp/longjmp, _stat64,
 * fopen_s, _setmode. (Threads and semaphores: threads.c.)
 *
 * Guest pointers are trusted as the other shims trust them (a bad one faults, reported by
 * fault_report.c); sizes the loader allocates by are bounded here.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shims.h"

/* ---- ctype: msvcrt's table, indexed -1..255, with its masks (isalpha('a') is 0x102, not glibc's 1024) ---- */

enum { W_UPPER = 0x1, W_LOWER = 0x2, W_DIGIT = 0x4, W_SPACE = 0x8, W_PUNCT = 0x10, W_CONTROL = 0x20,
       W_BLANK = 0x40, W_HEX = 0x80, W_ALPHA = 0x100 | W_UPPER | W_LOWER };

static uint16_t ctype_table[257];	/* [0] is EOF */
static uint16_t *pctype = ctype_table + 1;	/* msvcrt's `_pctype` variable points at entry 0 */

__attribute__((constructor))
static void fill_ctype_table(void)
{
	for (int c = 0; c < 128; c++) {	/* the "C" locale: bytes 128-255 are in no class */
		uint16_t m = 0;

		m |= isupper(c) ? W_UPPER | 0x100 : 0;
		m |= islower(c) ? W_LOWER | 0x100 : 0;
		m |= isdigit(c) ? W_DIGIT : 0;
		m |= isspace(c) ? W_SPACE : 0;
		m |= ispunct(c) ? W_PUNCT : 0;
		m |= iscntrl(c) ? W_CONTROL : 0;
		m |= c == ' ' ? W_BLANK : 0;	/* not tab: isprint is BLANK|PUNCT|ALPHA|DIGIT; isblank adds tab */
		m |= isxdigit(c) ? W_HEX : 0;
		pctype[c] = m;
	}
}

int ctype_bits(int c, int mask) { return c >= -1 && c <= 255 ? pctype[c] & mask : 0; }

static int mb_cur_max = 1;	/* msvcrt's `__mb_cur_max`: single-byte "C" locale */

static WINAPI int s__isctype(int c, int mask) { return ctype_bits(c, mask); }
static WINAPI uint16_t *s___pctype_func(void) { return pctype; }
static WINAPI int s_isalpha(int c) { return ctype_bits(c, W_ALPHA); }
static WINAPI int s_isupper(int c) { return ctype_bits(c, W_UPPER); }
static WINAPI int s_islower(int c) { return ctype_bits(c, W_LOWER); }
static WINAPI int s_isdigit(int c) { return ctype_bits(c, W_DIGIT); }
static WINAPI int s_isxdigit(int c) { return ctype_bits(c, W_HEX); }
static WINAPI int s_isspace(int c) { return ctype_bits(c, W_SPACE); }
static WINAPI int s_ispunct(int c) { return ctype_bits(c, W_PUNCT); }
static WINAPI int s_isalnum(int c) { return ctype_bits(c, W_ALPHA | W_DIGIT); }
static WINAPI int s_isprint(int c) { return ctype_bits(c, W_BLANK | W_PUNCT | W_ALPHA | W_DIGIT); }
static WINAPI int s_isgraph(int c) { return ctype_bits(c, W_PUNCT | W_ALPHA | W_DIGIT); }
static WINAPI int s_iscntrl(int c) { return ctype_bits(c, W_CONTROL); }
static WINAPI int s_isblank(int c) { return c == '\t' ? W_BLANK : ctype_bits(c, W_BLANK); }
static WINAPI int s_toupper(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static WINAPI int s_tolower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* ---- strings and numbers ---- */

static WINAPI void *s_memchr(const void *s, int c, size_t n) { return memchr(s, c, n); }
static WINAPI char *s_strtok(char *s, const char *sep) { return strtok(s, sep); }
static WINAPI size_t s_strspn(const char *s, const char *set) { return strspn(s, set); }
static WINAPI size_t s_strcspn(const char *s, const char *set) { return strcspn(s, set); }
static WINAPI char *s_strpbrk(const char *s, const char *set) { return strpbrk(s, set); }
static WINAPI char *s_strncat(char *d, const char *s, size_t n) { return strncat(d, s, n); }
static WINAPI int s__stricmp(const char *a, const char *b) { return strcasecmp(a, b); }
static WINAPI int s__strnicmp(const char *a, const char *b, size_t n) { return strncasecmp(a, b, n); }
static WINAPI double s_strtod(const char *s, char **end) { return strtod(s, end); }
static WINAPI float s_strtof(const char *s, char **end) { return strtof(s, end); }
static WINAPI double s_atof(const char *s) { return strtod(s, NULL); }
static WINAPI int32_t s_atol(const char *s) { return (int32_t)strtol(s, NULL, 10); }	/* Windows long: 32 bits */
static WINAPI int s_abs(int v) { return abs(v); }
static WINAPI int32_t s_labs(int32_t v) { return v < 0 ? -v : v; }

/* ---- time: time_t is 64-bit on x64 (time, _time64 and friends are one function); local time is UTC ---- */

struct win_tm {		/* msvcrt's struct tm: the nine ints only */
	int sec, min, hour, mday, mon, year, wday, yday, isdst;
};

#define MAX_TIME 32535215999LL	/* msvcrt's _gmtime64 limit: 3000-12-31 23:59:59 UTC */

static struct timespec start_time;

__attribute__((constructor))
static void note_start_time(void)
{
	clock_gettime(CLOCK_MONOTONIC, &start_time);
}

static WINAPI int64_t s__time64(int64_t *out)
{
	int64_t t = time(NULL);

	if (out)
		*out = t;
	return t;
}

/* msvcrt gives NULL (errno EINVAL) for times before 1970 or after 3000, where glibc goes on. */
static WINAPI struct win_tm *s__gmtime64(const int64_t *t)
{
	static __thread struct win_tm result;
	struct tm tm;
	time_t v;

	if (!t || *t < 0 || *t > MAX_TIME) {
		errno = EINVAL;
		return NULL;
	}
	v = (time_t)*t;
	gmtime_r(&v, &tm);
	result = (struct win_tm){ tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon, tm.tm_year,
				  tm.tm_wday, tm.tm_yday, 0 };
	return &result;
}

static struct tm host_tm(const struct win_tm *w)
{
	return (struct tm){ .tm_sec = w->sec, .tm_min = w->min, .tm_hour = w->hour, .tm_mday = w->mday,
			    .tm_mon = w->mon, .tm_year = w->year, .tm_wday = w->wday, .tm_yday = w->yday,
			    .tm_isdst = w->isdst, .tm_zone = "UTC" };
}

/* mktime in UTC (the local time zone here); normalizes the fields as mktime does. */
static WINAPI int64_t s__mktime64(struct win_tm *w)
{
	struct tm tm = host_tm(w);
	time_t t = timegm(&tm);

	if (t < 0 || t > MAX_TIME)
		return -1;
	*w = (struct win_tm){ tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon, tm.tm_year,
			      tm.tm_wday, tm.tm_yday, 0 };
	return t;
}

static WINAPI double s__difftime64(int64_t a, int64_t b) { return (double)(a - b); }

#ifdef __x86_64__	/* time_t is 64-bit: time, gmtime, ... are the _time64 family */
#define TIME_SHIMS M("time", s__time64), M("gmtime", s__gmtime64), M("localtime", s__gmtime64), \
		   M("mktime", s__mktime64), M("difftime", s__difftime64)
#else			/* on i386 msvcrt's time, gmtime, ... keep a 32-bit time_t */
static WINAPI int32_t s__time32(int32_t *out)
{
	int64_t t = s__time64(NULL);

	if (out)
		*out = (int32_t)t;
	return (int32_t)t;
}

static WINAPI struct win_tm *s__gmtime32(const int32_t *t) { return t ? s__gmtime64(&(int64_t){ *t }) : NULL; }
static WINAPI int32_t s__mktime32(struct win_tm *w) { int64_t t = s__mktime64(w); return t > INT32_MAX ? -1 : (int32_t)t; }
static WINAPI double s__difftime32(int32_t a, int32_t b) { return (double)a - b; }
#define TIME_SHIMS M("time", s__time32), M("_time32", s__time32), M("gmtime", s__gmtime32), \
		   M("_gmtime32", s__gmtime32), M("localtime", s__gmtime32), M("_localtime32", s__gmtime32), \
		   M("mktime", s__mktime32), M("_mktime32", s__mktime32), M("difftime", s__difftime32), \
		   M("_difftime32", s__difftime32)
#endif

/*
 * strftime: msvcrt's %c/%x/%X are "%m/%d/%y %H:%M:%S"-style (glibc's "C" locale spells them out),
 * its '#' flag drops leading zeros (glibc's '-'); the other conversions are glibc's.
 */
static WINAPI size_t s_strftime(char *buf, size_t max, const char *fmt, const struct win_tm *w)
{
	static const struct { char conv; const char *as; } msvcrt_forms[] = {
		{ 'c', "%m/%d/%y %H:%M:%S" }, { 'x', "%m/%d/%y" }, { 'X', "%H:%M:%S" },
	};
	size_t n = strlen(fmt), len = 0, r;
	char *host = malloc(n * 9 + 1);	/* "%c" (2 bytes) grows most: to 17 */
	struct tm tm = host_tm(w);

	if (!host)
		die(126, "strftime: out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *as = NULL;

		if (fmt[i] != '%' || i + 1 == n) {
			host[len++] = fmt[i];
			continue;
		}
		host[len++] = fmt[i++];
		if (fmt[i] == '#' && i + 1 < n) {
			host[len++] = '-';
			i++;
		}
		for (size_t k = 0; k < sizeof(msvcrt_forms) / sizeof(msvcrt_forms[0]); k++)
			if (msvcrt_forms[k].conv == fmt[i])
				as = msvcrt_forms[k].as;
		if (as) {
			len--;	/* drop the '%' (and a '-' flag: these forms have fixed widths) */
			if (host[len] == '-')
				len--;
			memcpy(host + len, as, strlen(as));
			len += strlen(as);
		} else {
			host[len++] = fmt[i];
		}
	}
	host[len] = 0;
	r = max ? strftime(buf, max, host, &tm) : 0;
	free(host);
	if (!r && max)
		buf[0] = 0;
	return r;
}

/* clock(): wall-clock milliseconds since the program started (msvcrt's meaning; CLOCKS_PER_SEC 1000). */
static WINAPI int32_t s_clock(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int32_t)((now.tv_sec - start_time.tv_sec) * 1000 + (now.tv_nsec - start_time.tv_nsec) / 1000000);
}

/* ---- scanf: msvcrt's sizes (long is 32 bits, I64, L = double) in glibc's words ---- */

#define SCAN_MAX_ARGS 32

/* Rewrites fmt (msvcrt) into out (glibc, at most 4/3 as long); returns how many pointers it takes. */
static int scan_format(const char *fmt, char *out)
{
	int args = 0;

	while (*fmt) {
		int suppress = 0, size = 0;	/* size: 0 default, 'h', 'H' (hh), 'l' (64-bit int / double), 'w' */

		if ((*out++ = *fmt++) != '%')
			continue;
		if (*fmt == '%') {
			*out++ = *fmt++;
			continue;
		}
		if (*fmt == '*') {
			suppress = 1;
			*out++ = *fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			*out++ = *fmt++;
		if (fmt[0] == 'h' && fmt[1] == 'h') { size = 'H'; fmt += 2; }
		else if (fmt[0] == 'h') { size = 'h'; fmt++; }
		else if (fmt[0] == 'l' && fmt[1] == 'l') { size = 'l'; fmt += 2; }
		else if (!strncmp(fmt, "I64", 3)) { size = 'l'; fmt += 3; }
		else if (!strncmp(fmt, "I32", 3)) { fmt += 3; }
		else if (fmt[0] == 'I' || fmt[0] == 'z') { size = 'l'; fmt++; }	/* pointer-sized */
		else if (fmt[0] == 'l') { size = 'w'; fmt++; }	/* 32-bit int, double, or wide text */
		else if (fmt[0] == 'L') { size = 'w'; fmt++; }	/* long double is double */
		char conv = *fmt;
		if (!conv)
			die(126, "scanf format ends inside a conversion");
		if (strchr("diouxXn", conv)) {
			if (size == 'H' || size == 'h')
				*out++ = 'h';
			if (size == 'H')
				*out++ = 'h';
			if (size == 'l') {
				*out++ = 'l';
				*out++ = 'l';
			}
		} else if (strchr("eEfgGaA", conv)) {
			if (size == 'w' || size == 'l')
				*out++ = 'l';
		} else if (strchr("cs[", conv)) {
			if (size == 'w')
				die(126, "scanf %%l%c (wide characters) is not supported", conv);
		} else if (strchr("SC", conv)) {
			die(126, "scanf %%%c (wide characters) is not supported", conv);
		} else if (conv != 'p') {
			die(126, "scanf conversion %%%c is not supported", conv);
		}
		*out++ = *fmt++;
		if (conv == '[') {	/* the set, copied as it is: "]" first is a member */
			if (*fmt == '^')
				*out++ = *fmt++;
			if (*fmt == ']')
				*out++ = *fmt++;
			while (*fmt && *fmt != ']')
				*out++ = *fmt++;
			if (!*fmt)
				die(126, "scanf %%[ set is not closed");
			*out++ = *fmt++;
		}
		if (!suppress && ++args > SCAN_MAX_ARGS)
			die(126, "scanf with over %d conversions", SCAN_MAX_ARGS);
	}
	*out = 0;
	return args;
}

enum scan_source { FROM_STRING, FROM_FILE };

/* src: the string, or the host FILE* (host_file of the program's) */
static int ms_scan(enum scan_source kind, void *src, const char *fmt, const win_slot *ap)
{
	void *p[SCAN_MAX_ARGS] = { 0 };
	char *host = malloc(2 * strlen(fmt) + 1);	/* "%Id" becomes "%lld" */
	int n, r;

	if (!host)
		die(126, "scanf: out of memory");
	n = scan_format(fmt, host);
	for (int i = 0; i < n; i++)
		p[i] = (void *)(uintptr_t)ap[i];
#define P8(i) p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], p[i + 5], p[i + 6], p[i + 7]
#define ALL_ARGS P8(0), P8(8), P8(16), P8(24)	/* unused ones are NULL, and never read by glibc */
	if (kind == FROM_STRING)
		r = sscanf(src, host, ALL_ARGS);
	else
		r = fscanf(src, host, ALL_ARGS);
#undef ALL_ARGS
#undef P8
	free(host);
	return r;
}

static WINAPI int s_sscanf(const char *s, const char *fmt, ...)
{
#define CALL(ap) ms_scan(FROM_STRING, (void *)s, fmt, ap)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s_fscanf(void *f, const char *fmt, ...)
{
#define CALL(ap) ms_scan(FROM_FILE, host_file(f), fmt, ap)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s_scanf(const char *fmt, ...)
{
#define CALL(ap) ms_scan(FROM_FILE, stdin, fmt, ap)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

/*
 * The UCRT's scanf family goes through these two, with msvcrt's format sizes. The secure (_s)
 * variants pass a buffer size after each %s/%c/%[ pointer, which the translation does not carry.
 */
enum { SCANF_SECURECRT = 1 };

static void refuse_secure_scanf(uint64_t options)
{
	if (options & SCANF_SECURECRT)
		die(126, "scanf_s (sizes after %%s/%%c/%%[ arguments) is not supported");
}

static WINAPI int s___stdio_common_vsscanf(uint64_t options, const char *s, size_t len, const char *fmt,
					   void *locale, const win_slot *ap)
{
	char *text = strndup(s, len);	/* len may be SIZE_MAX: the string's own end */
	int r;

	(void)locale;
	refuse_secure_scanf(options);
	if (!text)
		die(126, "scanf: out of memory");
	r = ms_scan(FROM_STRING, text, fmt, ap);
	free(text);
	return r;
}

static WINAPI int s___stdio_common_vfscanf(uint64_t options, void *f, const char *fmt, void *locale,
					   const win_slot *ap)
{
	(void)locale;
	refuse_secure_scanf(options);
	return ms_scan(FROM_FILE, host_file(f), fmt, ap);
}

static WINAPI int s_ungetc(int c, void *f) { return ungetc(c, host_file(f)); }

/* ---- setjmp/longjmp: registers Windows keeps across calls, in the program's jmp_buf ---- */

#ifdef __x86_64__

/*
 * Layout (ours; the program only holds the buffer): 8 rbx, 16 rsp (after the return), 24 rbp,
 * 32 rsi, 40 rdi, 48-72 r12-r15, 80 rip, 88 mxcsr, 92 x87 control word, 96-255 xmm6-xmm15.
 * No unwinding: there is no SEH to unwind (as __C_specific_handler, it is not supported).
 */
__asm__(
	".text\n"
	".p2align 4\n"
	"cerebro_win_setjmp:\n"		/* int _setjmp(jmp_buf rcx, void *frame rdx) */
	"	movq %rbx, 8(%rcx)\n"
	"	leaq 8(%rsp), %rax\n"
	"	movq %rax, 16(%rcx)\n"
	"	movq %rbp, 24(%rcx)\n"
	"	movq %rsi, 32(%rcx)\n"
	"	movq %rdi, 40(%rcx)\n"
	"	movq %r12, 48(%rcx)\n"
	"	movq %r13, 56(%rcx)\n"
	"	movq %r14, 64(%rcx)\n"
	"	movq %r15, 72(%rcx)\n"
	"	movq (%rsp), %rax\n"
	"	movq %rax, 80(%rcx)\n"
	"	stmxcsr 88(%rcx)\n"
	"	fnstcw 92(%rcx)\n"
	"	movdqu %xmm6, 96(%rcx)\n"
	"	movdqu %xmm7, 112(%rcx)\n"
	"	movdqu %xmm8, 128(%rcx)\n"
	"	movdqu %xmm9, 144(%rcx)\n"
	"	movdqu %xmm10, 160(%rcx)\n"
	"	movdqu %xmm11, 176(%rcx)\n"
	"	movdqu %xmm12, 192(%rcx)\n"
	"	movdqu %xmm13, 208(%rcx)\n"
	"	movdqu %xmm14, 224(%rcx)\n"
	"	movdqu %xmm15, 240(%rcx)\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".p2align 4\n"
	"cerebro_win_longjmp:\n"	/* void longjmp(jmp_buf rcx, int value edx): setjmp returns value, or 1 */
	"	movl %edx, %eax\n"
	"	testl %eax, %eax\n"
	"	jnz 1f\n"
	"	incl %eax\n"
	"1:	movq 8(%rcx), %rbx\n"
	"	movq 24(%rcx), %rbp\n"
	"	movq 32(%rcx), %rsi\n"
	"	movq 40(%rcx), %rdi\n"
	"	movq 48(%rcx), %r12\n"
	"	movq 56(%rcx), %r13\n"
	"	movq 64(%rcx), %r14\n"
	"	movq 72(%rcx), %r15\n"
	"	ldmxcsr 88(%rcx)\n"
	"	fldcw 92(%rcx)\n"
	"	movdqu 96(%rcx), %xmm6\n"
	"	movdqu 112(%rcx), %xmm7\n"
	"	movdqu 128(%rcx), %xmm8\n"
	"	movdqu 144(%rcx), %xmm9\n"
	"	movdqu 160(%rcx), %xmm10\n"
	"	movdqu 176(%rcx), %xmm11\n"
	"	movdqu 192(%rcx), %xmm12\n"
	"	movdqu 208(%rcx), %xmm13\n"
	"	movdqu 224(%rcx), %xmm14\n"
	"	movdqu 240(%rcx), %xmm15\n"
	"	movq 16(%rcx), %rsp\n"
	"	jmpq *80(%rcx)\n");
#define SETJMP_NAME "_setjmp"
#define SETJMP_UCRT "__intrinsic_setjmpex"	/* the UCRT's name: the same (frame) arguments */
#else
/*
 * i386 (cdecl; mingw's setjmp(b) is _setjmp3(b, NULL)), in the 64-byte jmp_buf: 0 ebx, 4 esi,
 * 8 edi, 12 ebp, 16 esp (after the return), 20 eip, 24 x87 control word.
 */
__asm__(
	".text\n"
	".p2align 4\n"
	"cerebro_win_setjmp:\n"		/* int _setjmp3(jmp_buf, void *ctx) */
	"	movl 4(%esp), %ecx\n"
	"	movl %ebx, 0(%ecx)\n"
	"	movl %esi, 4(%ecx)\n"
	"	movl %edi, 8(%ecx)\n"
	"	movl %ebp, 12(%ecx)\n"
	"	leal 4(%esp), %eax\n"
	"	movl %eax, 16(%ecx)\n"
	"	movl (%esp), %eax\n"
	"	movl %eax, 20(%ecx)\n"
	"	fnstcw 24(%ecx)\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".p2align 4\n"
	"cerebro_win_longjmp:\n"	/* void longjmp(jmp_buf, int value): setjmp returns value, or 1 */
	"	movl 4(%esp), %ecx\n"
	"	movl 8(%esp), %eax\n"
	"	testl %eax, %eax\n"
	"	jnz 1f\n"
	"	incl %eax\n"
	"1:	movl 0(%ecx), %ebx\n"
	"	movl 4(%ecx), %esi\n"
	"	movl 8(%ecx), %edi\n"
	"	movl 12(%ecx), %ebp\n"
	"	fldcw 24(%ecx)\n"
	"	movl 16(%ecx), %esp\n"
	"	jmp *20(%ecx)\n");
#define SETJMP_NAME "_setjmp3"
#endif

void cerebro_win_setjmp(void);	/* not C functions: only their addresses are taken */
void cerebro_win_longjmp(void);

/* ---- files: _stat64, fopen_s, _setmode (there is no text mode: bytes pass unchanged, as on Linux) ---- */

/* msvcrt's st_mode: the file type, and the owner's r/w/x repeated for group and others. */
static void to_win_stat(const struct stat *st, struct win_stat64 *w)
{
	uint16_t perm = st->st_mode & 0700;

	*w = (struct win_stat64){ .mode = (uint16_t)((st->st_mode & S_IFMT) | perm | perm >> 3 | perm >> 6),
				  .nlink = (int16_t)(st->st_nlink > 0x7fff ? 0x7fff : st->st_nlink),
				  .size = st->st_size, .atime = st->st_atime, .mtime = st->st_mtime,
				  .ctime = st->st_ctime };
}

static WINAPI int s__stat64(const char *path, struct win_stat64 *w)
{
	struct stat st;
	char buf[4096];

	path = host_path(path, buf);
	if (!path || stat(path, &st))
		return -1;
	to_win_stat(&st, w);
	return 0;
}

static WINAPI int s__fstat64(int fd, struct win_stat64 *w)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	to_win_stat(&st, w);
	return 0;
}

static WINAPI int s_fopen_s(void **out, const char *name, const char *mode)
{
	char buf[4096];

	if (!out || !name || !mode)
		return EINVAL;
	name = host_path(name, buf);
	*out = name ? guest_file(fopen(name, mode)) : NULL;
	return *out ? 0 : errno;
}

enum { W_O_TEXT = 0x4000, W_O_BINARY = 0x8000, W_O_WTEXT = 0x10000, W_O_U16TEXT = 0x20000,
       W_O_U8TEXT = 0x40000 };

static _Atomic int fd_modes[64];	/* what _setmode last set per descriptor (0: never set, text) */

static WINAPI int s__setmode(int fd, int mode)
{
	if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
		errno = EBADF;
		return -1;
	}
	if (mode != W_O_TEXT && mode != W_O_BINARY && mode != W_O_WTEXT && mode != W_O_U16TEXT && mode != W_O_U8TEXT) {
		errno = EINVAL;
		return -1;
	}
	if (fd >= 64)
		return W_O_TEXT;
	int old = atomic_exchange(&fd_modes[fd], mode);
	return old ? old : W_O_TEXT;
}

static WINAPI int s__fileno(void *f) { return fileno(host_file(f)); }
static WINAPI int s__isatty(int fd) { return isatty(fd) ? 0x40 : 0; }	/* msvcrt: a non-zero mask */

const struct shim crt_shims[] = {
	M("_isctype", s__isctype), M("__pctype_func", s___pctype_func), M("_pctype", &pctype),
	M("__mb_cur_max", &mb_cur_max),
	M("isalpha", s_isalpha), M("isupper", s_isupper), M("islower", s_islower), M("isdigit", s_isdigit),
	M("isxdigit", s_isxdigit), M("isspace", s_isspace), M("ispunct", s_ispunct), M("isalnum", s_isalnum),
	M("isprint", s_isprint), M("isgraph", s_isgraph), M("iscntrl", s_iscntrl), M("isblank", s_isblank),
	M("toupper", s_toupper), M("tolower", s_tolower), M("_toupper", s_toupper), M("_tolower", s_tolower),
	M("memchr", s_memchr), M("strtok", s_strtok), M("strspn", s_strspn), M("strcspn", s_strcspn),
	M("strpbrk", s_strpbrk), M("strncat", s_strncat), M("_stricmp", s__stricmp), M("_strnicmp", s__strnicmp),
	M("strtod", s_strtod), M("strtof", s_strtof), M("atof", s_atof), M("atol", s_atol), M("abs", s_abs),
	M("labs", s_labs),
	TIME_SHIMS, M("_time64", s__time64), M("_gmtime64", s__gmtime64), M("_localtime64", s__gmtime64),
	M("_mktime64", s__mktime64), M("_difftime64", s__difftime64), M("strftime", s_strftime), M("clock", s_clock),
	M(SETJMP_NAME, cerebro_win_setjmp), M("longjmp", cerebro_win_longjmp),
#ifdef SETJMP_UCRT
	M(SETJMP_UCRT, cerebro_win_setjmp),
#endif
	M("_stat64", s__stat64), M("_fstat64", s__fstat64), M("fopen_s", s_fopen_s), M("_setmode", s__setmode),
	M("_fileno", s__fileno), M("_isatty", s__isatty),
	M("sscanf", s_sscanf), M("fscanf", s_fscanf), M("scanf", s_scanf), M("ungetc", s_ungetc),
	M("__stdio_common_vsscanf", s___stdio_common_vsscanf), M("__stdio_common_vfscanf", s___stdio_common_vfscanf),
};

SHIM_TABLE_SIZE(crt);
