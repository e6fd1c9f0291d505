// SPDX-License-Identifier: MIT
/*
 * cerebro-peload: runs a PE32+ x86-64 Windows console program on Linux; built with
 * gcc -m32 (cerebro-peload32), a PE32 i386 one.
 *
 * Maps the sections, applies base relocations, binds every import to a shim
 * (KERNEL32/msvcrt functions console programs use, written in the Windows calling
 * conventions: shims.h), sets up a TEB for the gs (x64) or fs (i386) segment, native
 * TLS and TLS callbacks, then calls the entry point. An import with no shim is
 * refused before any of the program's code runs, naming DLL!function.
 *
 * Every header, section and directory rule is checked before the image is mapped (the same
 * rules as loaders/pe.py: this is the path binfmt_misc takes, with no Python in front), and a
 * fault in the running program is reported as one line (fault_report.c).
 *
 * Usage: cerebro-peload [--relocate] PROGRAM.exe [ARGS...]
 *        cerebro-peload --list-shims
 * Exit status: the program's, or 125 (the program faulted) / 126 (bad image) /
 * 127 (unsupported import).
 */
#define _GNU_SOURCE
#ifdef __x86_64__
#include <asm/prctl.h>
#else
#include <asm/ldt.h>
#endif
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fault_report.h"
#include "shims.h"

#define PAGE 4096u
#define MAX_IMAGE (1u << 30)
#define MAX_FILE (1u << 30)

typedef WINAPI int (*win_entry_fn)(void);
typedef WINAPI void (*win_void_fn)(void);
typedef WINAPI int (*win_int_fn)(void);
typedef STDCALL void (*win_tls_fn)(void *, uint32_t, void *);

static uint8_t *image;		/* mapped image */
static size_t image_size;
static uint8_t *page_prot;	/* Windows PAGE_* per image page, for VirtualQuery */
static int g_argc;
static char **g_argv;
static char *g_cmdline;
static int g_fmode, g_commode;
__thread uint32_t g_last_error;
static uint8_t g_iob[3][sizeof(void *) == 8 ? 48 : 32];	/* msvcrt FILE structs (48 or 32 bytes): stdin, stdout, stderr */
static win_void_fn onexit_fns[64];
static int onexit_count;
static __thread void *tls_values[64];	/* TlsGetValue slots: per thread */
static _Atomic int tls_next;

/* One line on stderr, whatever a hostile file names things: control and non-ASCII bytes become '?'. */
__attribute__((noreturn))
static void vdie(int status, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	fflush(stdout);
	fprintf(stderr, "cerebro-peload: %s\n", msg);
	exit(status);
}

void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(status, fmt, ap);
}

void *loaded_image(void) { return image; }

/* A pointer to len bytes at rva inside the mapped image, or death. */
static void *at(uint64_t rva, uint64_t len, const char *what)
{
	if (rva > image_size || len > image_size - rva)
		die(126, "%s at RVA %#llx (+%#llx) lies outside the image", what,
		    (unsigned long long)rva, (unsigned long long)len);
	return image + rva;
}

static uint64_t va_to_rva(uint64_t va, const char *what)
{
	uint64_t base = (uint64_t)(uintptr_t)image;

	if (va < base || va - base >= image_size)
		die(126, "%s %#llx lies outside the image", what, (unsigned long long)va);
	return va - base;
}

/* ---- msvcrt FILE mapping and printf with the Windows va_list ---- */

FILE *host_file(void *f)
{
	if (f == g_iob[0])
		return stdin;
	if (f == g_iob[1])
		return stdout;
	if (f == g_iob[2])
		return stderr;
	if (!f)
		die(126, "NULL FILE* passed to a stdio function");
	return guest_file_host(f);
}

struct out {
	char *p;
	size_t len, cap;
};

static char *out_reserve(struct out *o, size_t n)
{
	if (n > (1u << 28) || o->len + n + 1 > (1u << 28))
		die(126, "printf output over 256 MiB");
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *p = realloc(o->p, cap);
		if (!p)
			die(126, "out of memory");
		o->p = p;
		o->cap = cap;
	}
	return o->p + o->len;
}

static void out_add(struct out *o, const char *s, size_t n)
{
	memcpy(out_reserve(o, n), s, n);
	o->len += n;
	o->p[o->len] = 0;
}

static void out_wide(struct out *o, const uint16_t *w, int limit)
{
	for (int i = 0; w && (limit < 0 || i < limit) && w[i]; i++) {
		char c = w[i] < 128 ? (char)w[i] : '?';
		out_add(o, &c, 1);
	}
}

#define OUT_PRINTF(o, spec, value) do {					\
	int need_ = snprintf(NULL, 0, spec, value);			\
	if (need_ < 0)							\
		die(126, "bad printf conversion %s", spec);		\
	snprintf(out_reserve(o, need_), need_ + 1, spec, value);	\
	(o)->len += need_;						\
} while (0)

/* The next variadic argument of size bytes (4 or 8): one slot on x64, one or two on i386. */
static uint64_t next_arg(const win_slot *ap, size_t *ai, int size)
{
	uint64_t v = ap[(*ai)++];

	if (size == 8 && sizeof(win_slot) == 4)
		v |= (uint64_t)ap[(*ai)++] << 32;
	return v;
}

/* Formats like msvcrt printf: ap walks the argument slots of a Windows va_list. */
static void ms_format(struct out *o, const char *fmt, const win_slot *ap)
{
	size_t ai = 0;

	out_reserve(o, 0);
	o->p[o->len] = 0;
	while (*fmt) {
		char spec[48];
		size_t sl = 0;
		int size = 4, wide = 0;

		if (*fmt != '%') {
			const char *end = strchrnul(fmt, '%');
			out_add(o, fmt, end - fmt);
			fmt = end;
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			out_add(o, "%", 1);
			fmt++;
			continue;
		}
		spec[sl++] = '%';
		while (*fmt && strchr("-+ #0", *fmt) && sl < 8)
			spec[sl++] = *fmt++;
		for (int part = 0; part < 2; part++) {
			if (part == 1) {
				if (*fmt != '.')
					break;
				spec[sl++] = *fmt++;
			}
			if (*fmt == '*') {
				int v = (int)ap[ai++];
				if (v > 100000 || v < -100000)
					die(126, "printf width/precision %d too large", v);
				sl += snprintf(spec + sl, 8, "%d", v);
				fmt++;
			}
			for (int d = 0; isdigit((unsigned char)*fmt); d++) {
				if (d >= 5)
					die(126, "printf width/precision too large");
				spec[sl++] = *fmt++;
			}
		}
		if (fmt[0] == 'h' && fmt[1] == 'h') { size = 1; fmt += 2; }
		else if (fmt[0] == 'h') { size = 2; fmt++; }
		else if (fmt[0] == 'l' && fmt[1] == 'l') { size = 8; fmt += 2; }
		else if (fmt[0] == 'l' || fmt[0] == 'w') { size = 4; wide = 1; fmt++; } /* Windows long: 32 bits */
		else if (!strncmp(fmt, "I64", 3)) { size = 8; fmt += 3; }
		else if (!strncmp(fmt, "I32", 3)) { size = 4; fmt += 3; }
		else if (fmt[0] == 'j') { size = 8; fmt++; }
		else if (strchr("Izt", fmt[0]) && fmt[0]) { size = sizeof(void *); fmt++; }	/* pointer-sized */
		else if (fmt[0] == 'L') { fmt++; }	/* msvcrt long double is double */
		char conv = *fmt ? *fmt++ : 0;
		uint64_t raw = 0;
		if (conv && conv != 'n')
			raw = next_arg(ap, &ai, strchr("fFeEgGaA", conv) ? 8 : conv == 'p' || conv == 's' ||
				       conv == 'S' ? (int)sizeof(void *) : size);
		spec[sl] = 0;
		switch (conv) {
		case 'd': case 'i': {
			int64_t v = size == 8 ? (int64_t)raw : size == 2 ? (int16_t)raw :
				    size == 1 ? (int8_t)raw : (int32_t)raw;
			strcpy(spec + sl, "lld");
			OUT_PRINTF(o, spec, (long long)v);
			break;
		}
		case 'u': case 'o': case 'x': case 'X': {
			uint64_t v = size == 8 ? raw : size == 2 ? (uint16_t)raw :
				     size == 1 ? (uint8_t)raw : (uint32_t)raw;
			spec[sl] = 'l'; spec[sl + 1] = 'l'; spec[sl + 2] = conv; spec[sl + 3] = 0;
			OUT_PRINTF(o, spec, (unsigned long long)v);
			break;
		}
		case 'c':
			strcpy(spec + sl, "c");
			OUT_PRINTF(o, spec, (int)(unsigned char)raw);
			break;
		case 's': case 'S':
			if (wide || conv == 'S') {
				out_wide(o, (const uint16_t *)(uintptr_t)raw, -1);
				break;
			}
			strcpy(spec + sl, "s");
			OUT_PRINTF(o, spec, raw ? (const char *)(uintptr_t)raw : "(null)");
			break;
		case 'p':
			OUT_PRINTF(o, sizeof(void *) == 8 ? "%016llX" : "%08llX", (unsigned long long)raw);
			break;
		case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A': {
			double d;
			memcpy(&d, &raw, 8);
			spec[sl] = conv; spec[sl + 1] = 0;
			OUT_PRINTF(o, spec, d);
			break;
		}
		case 'n':
			die(126, "printf %%n is not supported (refused for safety)");
		default:
			die(126, "printf conversion %%%c is not supported", conv ? conv : '?');
		}
	}
}

static int write_formatted(FILE *f, const char *fmt, const win_slot *ap)
{
	struct out o = { 0 };
	size_t n;

	ms_format(&o, fmt, ap);
	n = fwrite(o.p, 1, o.len, f);
	free(o.p);
	return n == o.len ? (int)n : -1;
}

static int print_to_buffer(char *dst, size_t cap, const char *fmt, const win_slot *ap, int c99)
{
	struct out o = { 0 };
	int n;

	ms_format(&o, fmt, ap);
	n = (int)o.len;
	if (cap) {
		size_t copy = o.len < cap ? o.len : cap - 1;
		memcpy(dst, o.p, copy);
		if (c99 || o.len < cap)
			dst[copy] = 0;
	}
	free(o.p);
	if (!c99 && (size_t)n >= cap)
		return -1;	/* msvcrt _snprintf: -1 when truncated */
	return n;
}

/* ---- msvcrt shims ---- */

static WINAPI int s_vfprintf(void *f, const char *fmt, const win_slot *ap) { return write_formatted(host_file(f), fmt, ap); }
static WINAPI int s_vprintf(const char *fmt, const win_slot *ap) { return write_formatted(stdout, fmt, ap); }
static WINAPI int s_vsnprintf(char *d, size_t n, const char *fmt, const win_slot *ap) { return print_to_buffer(d, n, fmt, ap, 0); }
static WINAPI int s_vsprintf(char *d, const char *fmt, const win_slot *ap) { return print_to_buffer(d, SIZE_MAX >> 1, fmt, ap, 1); }

static WINAPI int s_fprintf(void *f, const char *fmt, ...)
{
#define CALL(ap) write_formatted(host_file(f), fmt, ap)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s_printf(const char *fmt, ...)
{
#define CALL(ap) write_formatted(stdout, fmt, ap)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s_sprintf(char *d, const char *fmt, ...)
{
#define CALL(ap) print_to_buffer(d, SIZE_MAX >> 1, fmt, ap, 1)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s__snprintf(char *d, size_t n, const char *fmt, ...)
{
#define CALL(ap) print_to_buffer(d, n, fmt, ap, 0)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static WINAPI int s_snprintf(char *d, size_t n, const char *fmt, ...)
{
#define CALL(ap) print_to_buffer(d, n, fmt, ap, 1)
	return MS_VARARGS(fmt, CALL);
#undef CALL
}

static void run_onexit(void)
{
	while (onexit_count > 0)
		onexit_fns[--onexit_count]();
}

static WINAPI void s_exit(int code) { run_onexit(); fflush(NULL); exit(code); }
static WINAPI void s__exit(int code) { fflush(NULL); _exit(code); }
static WINAPI void s_abort(void) { fflush(NULL); abort(); }
static WINAPI void s__cexit(void) { run_onexit(); fflush(NULL); }
static WINAPI void s__amsg_exit(int code) { die(255, "runtime error %d (_amsg_exit)", code); }

static WINAPI void *s__onexit(void *fn)
{
	if (onexit_count >= 64)
		return NULL;
	onexit_fns[onexit_count++] = (win_void_fn)fn;
	return fn;
}

static WINAPI int s_atexit(void *fn) { return s__onexit(fn) ? 0 : -1; }

static WINAPI void s__initterm(win_void_fn *begin, win_void_fn *end)
{
	at(va_to_rva((uintptr_t)begin, "_initterm table"), (uintptr_t)end - (uintptr_t)begin, "_initterm table");
	for (; begin < end; begin++)
		if (*begin)
			(*begin)();
}

/* The UCRT's _initterm_e: the same table of initializers returning int; the first non-zero ends it. */
static WINAPI int s__initterm_e(win_int_fn *begin, win_int_fn *end)
{
	int r = 0;

	at(va_to_rva((uintptr_t)begin, "_initterm_e table"), (uintptr_t)end - (uintptr_t)begin, "_initterm_e table");
	for (; begin < end && !r; begin++)
		if (*begin)
			r = (*begin)();
	return r;
}

static WINAPI int s___getmainargs(int *argc, char ***argv, char ***envp, int glob, void *si)
{
	(void)glob; (void)si;
	*argc = g_argc;
	*argv = g_argv;
	*envp = environ;
	return 0;
}

static WINAPI void s_noop_int(int x) { (void)x; }
static WINAPI void s_noop_ptr(void *x) { (void)x; }
static WINAPI void *s___iob_func(void) { return g_iob; }
/* i686 mingw reads msvcrt's data exports through these accessors */
static WINAPI char **s___p__acmdln(void) { return &g_cmdline; }
static WINAPI int *s___p__fmode(void) { return &g_fmode; }
static WINAPI int *s___p__commode(void) { return &g_commode; }
static WINAPI int *s__errno(void) { return &errno; }
static WINAPI int s___lc_codepage_func(void) { return 0; }	/* the "C" locale */
static WINAPI int s___mb_cur_max_func(void) { return 1; }
static WINAPI void *s_localeconv(void) { return localeconv(); }

/* Handlers would need ms_abi trampolines; console programs only query/restore the default. */
static WINAPI void *s_signal(int sig, void *handler) { (void)sig; (void)handler; return NULL; }

static WINAPI int s___C_specific_handler(void *a, void *b, void *c, void *d)
{
	(void)a; (void)b; (void)c; (void)d;
	die(126, "a Windows structured exception was raised; SEH is not supported");
	return 0;
}

static WINAPI void *s_malloc(size_t n) { return malloc(n); }
static WINAPI void *s_calloc(size_t n, size_t m) { return calloc(n, m); }
static WINAPI void *s_realloc(void *p, size_t n) { return realloc(p, n); }
static WINAPI void s_free(void *p) { free(p); }
static WINAPI void *s_memcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }
static WINAPI void *s_memmove(void *d, const void *s, size_t n) { return memmove(d, s, n); }
static WINAPI void *s_memset(void *d, int c, size_t n) { return memset(d, c, n); }
static WINAPI int s_memcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
static WINAPI size_t s_strlen(const char *s) { return strlen(s); }
static WINAPI int s_strcmp(const char *a, const char *b) { return strcmp(a, b); }
static WINAPI int s_strncmp(const char *a, const char *b, size_t n) { return strncmp(a, b, n); }
static WINAPI char *s_strcpy(char *d, const char *s) { return strcpy(d, s); }
static WINAPI char *s_strncpy(char *d, const char *s, size_t n) { return strncpy(d, s, n); }
static WINAPI char *s_strcat(char *d, const char *s) { return strcat(d, s); }
static WINAPI char *s_strchr(const char *s, int c) { return strchr(s, c); }
static WINAPI char *s_strrchr(const char *s, int c) { return strrchr(s, c); }
static WINAPI char *s_strstr(const char *s, const char *n) { return strstr(s, n); }
static WINAPI char *s_strerror(int e) { return strerror(e); }
static WINAPI int32_t s_strtol(const char *s, char **e, int b) { return (int32_t)strtol(s, e, b); }
static WINAPI uint32_t s_strtoul(const char *s, char **e, int b) { return (uint32_t)strtoul(s, e, b); }
static WINAPI int s_atoi(const char *s) { return atoi(s); }
static WINAPI char *s_getenv(const char *n) { return getenv(n); }

static WINAPI size_t s_wcslen(const uint16_t *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

typedef WINAPI int (*win_cmp_fn)(const void *, const void *);

/* The comparator uses the Windows convention, so glibc's qsort cannot call it: a merge sort here. */
static WINAPI void s_qsort(void *base, size_t n, size_t size, win_cmp_fn cmp)
{
	uint8_t *a = base, *tmp;

	if (n < 2 || !size)
		return;
	if (n > SIZE_MAX / size)
		die(126, "qsort: %zu elements of %zu bytes overflow", n, size);
	tmp = malloc(n * size);
	if (!tmp)
		die(126, "qsort: out of memory");
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				memcpy(tmp + size * k++, a + size * (cmp(a + size * j, a + size * i) < 0 ? j++ : i++), size);
			while (i < mid)
				memcpy(tmp + size * k++, a + size * i++, size);
			while (j < hi)
				memcpy(tmp + size * k++, a + size * j++, size);
		}
		memcpy(a, tmp, n * size);
	}
	free(tmp);
}

static WINAPI void *s_bsearch(const void *key, const void *base, size_t n, size_t size, win_cmp_fn cmp)
{
	const uint8_t *a = base;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp(key, a + mid * size);
		if (!c)
			return (void *)(a + mid * size);
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static WINAPI void *s_fopen(const char *name, const char *mode)
{
	char buf[4096];

	name = host_path(name, buf);
	return name ? guest_file(fopen(name, mode)) : NULL;
}
static WINAPI int s_fclose(void *f)
{
	FILE *host = host_file(f);

	if (host != stdin && host != stdout && host != stderr)
		guest_file_release(f);	/* the block fopen gave the program */
	return fclose(host);
}
static WINAPI size_t s_fread(void *p, size_t s, size_t n, void *f) { return fread(p, s, n, host_file(f)); }
static WINAPI size_t s_fwrite(const void *p, size_t s, size_t n, void *f) { return fwrite(p, s, n, host_file(f)); }
static WINAPI int s_fputc(int c, void *f) { return fputc(c, host_file(f)); }
static WINAPI int s_fputs(const char *s, void *f) { return fputs(s, host_file(f)); }
static WINAPI int s_puts(const char *s) { return puts(s); }
static WINAPI int s_putchar(int c) { return putchar(c); }
static WINAPI int s_fflush(void *f) { return fflush(f ? host_file(f) : NULL); }
static WINAPI char *s_fgets(char *s, int n, void *f) { return fgets(s, n, host_file(f)); }
static WINAPI int s_fgetc(void *f) { return fgetc(host_file(f)); }
static WINAPI int s_feof(void *f) { return feof(host_file(f)); }
static WINAPI int s_ferror(void *f) { return ferror(host_file(f)); }
static WINAPI int s_fseek(void *f, int32_t off, int whence) { return fseek(host_file(f), off, whence); }
static WINAPI int32_t s_ftell(void *f) { return (int32_t)ftell(host_file(f)); }

/* ---- KERNEL32 shims ---- */

enum { PAGE_NOACCESS = 1, PAGE_READONLY = 2, PAGE_READWRITE = 4, PAGE_WRITECOPY = 8, PAGE_EXECUTE = 0x10,
       PAGE_EXECUTE_READ = 0x20, PAGE_EXECUTE_READWRITE = 0x40, PAGE_EXECUTE_WRITECOPY = 0x80 };

static int host_prot(uint32_t p)
{
	switch (p & 0xff) {
	case PAGE_NOACCESS: return PROT_NONE;
	case PAGE_READONLY: return PROT_READ;
	case PAGE_READWRITE: case PAGE_WRITECOPY: return PROT_READ | PROT_WRITE;
	case PAGE_EXECUTE: case PAGE_EXECUTE_READ: return PROT_READ | PROT_EXEC;
	case PAGE_EXECUTE_READWRITE: case PAGE_EXECUTE_WRITECOPY: return PROT_READ | PROT_WRITE | PROT_EXEC;
	default: return -1;
	}
}

static STDCALL int s_VirtualProtect(void *addr, size_t size, uint32_t prot, uint32_t *old)
{
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)image;
	int hp = host_prot(prot);

	if (hp < 0 || a < base || a - base >= image_size || size > image_size - (a - base)) {
		g_last_error = 87;	/* ERROR_INVALID_PARAMETER */
		return 0;
	}
	size_t first = (a - base) / PAGE, last = (a - base + size + PAGE - 1) / PAGE;
	if (old)
		*old = page_prot[first];
	if (mprotect(image + first * PAGE, (last - first) * PAGE, hp))
		return 0;
	for (size_t i = first; i < last; i++)
		page_prot[i] = (uint8_t)prot;
	return 1;
}

struct mem_info {	/* MEMORY_BASIC_INFORMATION: 48 bytes on x64, 28 on i386 (no PartitionId) */
	void *base, *alloc_base;
	uint32_t alloc_protect;
#ifdef __x86_64__
	uint16_t partition, pad;
#endif
	size_t region_size;
	uint32_t state, protect, type;
#ifdef __x86_64__
	uint32_t pad2;
#endif
};

static STDCALL size_t s_VirtualQuery(const void *addr, struct mem_info *mi, size_t len)
{
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)image;

	if (len < sizeof(*mi) || a < base || a - base >= image_size)
		return 0;
	size_t page = (a - base) / PAGE, end = page, pages = image_size / PAGE;
	while (end < pages && page_prot[end] == page_prot[page])
		end++;
	memset(mi, 0, sizeof(*mi));
	mi->base = image + page * PAGE;
	mi->alloc_base = image;
	mi->alloc_protect = PAGE_EXECUTE_WRITECOPY;
	mi->region_size = (end - page) * PAGE;
	mi->state = 0x1000;	/* MEM_COMMIT */
	mi->protect = page_prot[page];
	mi->type = 0x1000000;	/* MEM_IMAGE */
	return sizeof(*mi);
}

/* Console handles: STD_INPUT/OUTPUT/ERROR_HANDLE (-10/-11/-12) map to file descriptors 0/1/2. */
static STDCALL void *s_GetStdHandle(uint32_t which)
{
	int32_t w = (int32_t)which;

	if (w < -12 || w > -10)
		return (void *)(intptr_t)-1;	/* INVALID_HANDLE_VALUE */
	return (void *)(intptr_t)(0x100 + (-10 - w));
}

static int handle_fd(void *h) { return win_handle_fd(h); }	/* console, file and pipe handles (winfile.c) */

static STDCALL int s_WriteFile(void *h, const void *buf, uint32_t n, uint32_t *written, void *overlapped)
{
	int fd = handle_fd(h);
	ssize_t r;

	(void)overlapped;
	if (fd < 0) {
		g_last_error = 6;	/* ERROR_INVALID_HANDLE */
		return 0;
	}
	fflush(fd == 1 ? stdout : fd == 2 ? stderr : NULL);
	r = write(fd, buf, n);
	if (written)
		*written = r < 0 ? 0 : (uint32_t)r;
	return r >= 0;
}

static STDCALL int s_ReadFile(void *h, void *buf, uint32_t n, uint32_t *got, void *overlapped)
{
	int fd = handle_fd(h);
	ssize_t r;

	if (overlapped)
		return read_overlapped(h, buf, n, got, overlapped);	/* process.c: pipes on completion ports */
	if (fd < 0) {
		g_last_error = 6;
		return 0;
	}
	r = read(fd, buf, n);
	if (got)
		*got = r < 0 ? 0 : (uint32_t)r;
	return r >= 0;
}

static STDCALL int s_WriteConsoleA(void *h, const void *buf, uint32_t n, uint32_t *written, void *reserved)
{
	return s_WriteFile(h, buf, n, written, reserved);
}

static STDCALL uint32_t s_GetEnvironmentVariableA(const char *name, char *buf, uint32_t size)
{
	const char *v = getenv(name);
	size_t len;

	if (!v) {
		g_last_error = 203;	/* ERROR_ENVVAR_NOT_FOUND */
		return 0;
	}
	len = strlen(v);
	if (len >= size)
		return (uint32_t)len + 1;	/* the size needed, NUL included */
	memcpy(buf, v, len + 1);
	return (uint32_t)len;
}

/* The program's absolute path in Windows form (paths.c); truncated as Windows does when size is short. */
static STDCALL uint32_t s_GetModuleFileNameA(void *module, char *buf, uint32_t size)
{
	size_t len;

	if ((module && module != loaded_image()) || !size)
		return 0;
	len = windows_path(g_argv[0], buf, size);
	if (len >= size) {
		g_last_error = 122;	/* ERROR_INSUFFICIENT_BUFFER */
		return size;
	}
	return (uint32_t)len;
}

static STDCALL void s_ExitProcess(uint32_t code) { s_exit((int)code); }
static STDCALL uint32_t s_GetLastError(void) { return g_last_error; }
static STDCALL void s_SetLastError(uint32_t e) { g_last_error = e; }
static STDCALL void s_Sleep(uint32_t ms) { usleep(ms * 1000u); }
static STDCALL char *s_GetCommandLineA(void) { return g_cmdline; }
static STDCALL uint32_t s_GetCurrentProcessId(void) { return (uint32_t)getpid(); }
static STDCALL uint32_t s_GetCurrentThreadId(void) { return (uint32_t)gettid(); }
static STDCALL void *s_SetUnhandledExceptionFilter(void *f) { (void)f; return NULL; }
static STDCALL int s_IsDBCSLeadByteEx(uint32_t cp, uint8_t c) { (void)cp; (void)c; return 0; }

static STDCALL uint32_t s_GetTickCount(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

static STDCALL int s_QueryPerformanceCounter(int64_t *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	*c = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	return 1;
}

static STDCALL int s_QueryPerformanceFrequency(int64_t *f) { *f = 1000000000; return 1; }

static STDCALL void s_GetSystemTimeAsFileTime(uint64_t *ft)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);	/* 100 ns ticks since 1601 */
	*ft = ((uint64_t)ts.tv_sec + 11644473600ull) * 10000000ull + (uint64_t)ts.tv_nsec / 100;
}

static STDCALL void s_GetStartupInfoA(uint8_t *si)
{
	memset(si, 0, 104);
	si[0] = 104;
}

static STDCALL uint32_t s_TlsAlloc(void)
{
	int i = atomic_fetch_add(&tls_next, 1);

	return i >= 0 && i < 64 ? (uint32_t)i : 0xffffffffu;
}
static STDCALL void *s_TlsGetValue(uint32_t i) { return i < 64 ? tls_values[i] : NULL; }
static STDCALL int s_TlsSetValue(uint32_t i, void *v) { if (i >= 64) return 0; tls_values[i] = v; return 1; }
static STDCALL int s_TlsFree(uint32_t i) { return i < 64; }

static STDCALL int s_MultiByteToWideChar(uint32_t cp, uint32_t flags, const char *src, int n, uint16_t *dst, int cap)
{
	(void)cp; (void)flags;
	if (n < 0)
		n = (int)strlen(src) + 1;
	if (!cap)
		return n;
	if (cap < n) {
		g_last_error = 122;	/* ERROR_INSUFFICIENT_BUFFER */
		return 0;
	}
	for (int i = 0; i < n; i++)
		dst[i] = (uint8_t)src[i];
	return n;
}

static STDCALL int s_WideCharToMultiByte(uint32_t cp, uint32_t flags, const uint16_t *src, int n, char *dst, int cap,
					const char *defchar, int *used)
{
	(void)cp; (void)flags; (void)defchar;
	if (n < 0)
		n = (int)s_wcslen(src) + 1;
	if (used)
		*used = 0;
	if (!cap)
		return n;
	if (cap < n) {
		g_last_error = 122;
		return 0;
	}
	for (int i = 0; i < n; i++)
		dst[i] = src[i] < 256 ? (char)src[i] : '?';
	return n;
}

static const struct shim peload_shims[] = {
	K("ExitProcess", s_ExitProcess), K("GetCommandLineA", s_GetCommandLineA),
	K("GetCurrentProcessId", s_GetCurrentProcessId), K("GetCurrentThreadId", s_GetCurrentThreadId),
	K("GetLastError", s_GetLastError), K("SetLastError", s_SetLastError),
	K("GetStdHandle", s_GetStdHandle), K("WriteFile", s_WriteFile), K("ReadFile", s_ReadFile),
	K("WriteConsoleA", s_WriteConsoleA), K("GetEnvironmentVariableA", s_GetEnvironmentVariableA),
	K("GetModuleFileNameA", s_GetModuleFileNameA),
	K("GetStartupInfoA", s_GetStartupInfoA),
	K("GetSystemTimeAsFileTime", s_GetSystemTimeAsFileTime), K("GetTickCount", s_GetTickCount),
	K("IsDBCSLeadByteEx", s_IsDBCSLeadByteEx), K("MultiByteToWideChar", s_MultiByteToWideChar),
	K("QueryPerformanceCounter", s_QueryPerformanceCounter),
	K("QueryPerformanceFrequency", s_QueryPerformanceFrequency),
	K("SetUnhandledExceptionFilter", s_SetUnhandledExceptionFilter), K("Sleep", s_Sleep),
	K("TlsAlloc", s_TlsAlloc), K("TlsFree", s_TlsFree), K("TlsGetValue", s_TlsGetValue),
	K("TlsSetValue", s_TlsSetValue), K("VirtualProtect", s_VirtualProtect),
	K("VirtualQuery", s_VirtualQuery), K("WideCharToMultiByte", s_WideCharToMultiByte),
	M("__C_specific_handler", s___C_specific_handler), M("___lc_codepage_func", s___lc_codepage_func),
	M("___mb_cur_max_func", s___mb_cur_max_func), M("__getmainargs", s___getmainargs),
	M("__initenv", &environ), M("__iob_func", s___iob_func), M("_iob", g_iob),
	M("__set_app_type", s_noop_int), M("__setusermatherr", s_noop_ptr), M("_acmdln", &g_cmdline),
	M("_amsg_exit", s__amsg_exit), M("__p__acmdln", s___p__acmdln), M("__p__fmode", s___p__fmode),
	M("__p__commode", s___p__commode), M("_cexit", s__cexit), M("_commode", &g_commode),
	M("_errno", s__errno), M("_exit", s__exit), M("_fmode", &g_fmode), M("_initterm", s__initterm), M("_initterm_e", s__initterm_e),
	M("_lock", s_noop_int), M("_unlock", s_noop_int), M("_onexit", s__onexit), M("atexit", s_atexit),
	M("abort", s_abort), M("exit", s_exit), M("calloc", s_calloc), M("malloc", s_malloc),
	M("realloc", s_realloc), M("free", s_free), M("fclose", s_fclose), M("fopen", s_fopen),
	M("fread", s_fread), M("fwrite", s_fwrite), M("fputc", s_fputc), M("fputs", s_fputs),
	M("puts", s_puts), M("putchar", s_putchar), M("fflush", s_fflush), M("fgets", s_fgets),
	M("fgetc", s_fgetc), M("getc", s_fgetc), M("feof", s_feof), M("ferror", s_ferror),
	M("fseek", s_fseek), M("ftell", s_ftell), M("fprintf", s_fprintf), M("printf", s_printf),
	M("sprintf", s_sprintf), M("snprintf", s_snprintf), M("_snprintf", s__snprintf),
	M("vfprintf", s_vfprintf), M("vprintf", s_vprintf), M("vsprintf", s_vsprintf),
	M("_vsnprintf", s_vsnprintf), M("getenv", s_getenv), M("localeconv", s_localeconv),
	M("memcpy", s_memcpy), M("memmove", s_memmove), M("memset", s_memset), M("memcmp", s_memcmp),
	M("strlen", s_strlen), M("strcmp", s_strcmp), M("strncmp", s_strncmp), M("strcpy", s_strcpy),
	M("strncpy", s_strncpy), M("strcat", s_strcat), M("strchr", s_strchr), M("strrchr", s_strrchr),
	M("strstr", s_strstr), M("strerror", s_strerror), M("strtol", s_strtol), M("strtoul", s_strtoul),
	M("atoi", s_atoi), M("wcslen", s_wcslen), M("signal", s_signal), M("qsort", s_qsort),
	M("bsearch", s_bsearch),
};

static SHIM_TABLE_SIZE(peload);

/* The UCRT's DLLs export the msvcrt functions it kept under the same names: one set of shims serves both. */
static const struct dll_alias {
	const char *prefix, *dll;	/* a DLL whose name starts with prefix (any case) is looked up as dll */
} dll_aliases[] = {
	{ "api-ms-win-crt-", "msvcrt.dll" }, { "ucrtbase.dll", "msvcrt.dll" }, { "vcruntime140.dll", "msvcrt.dll" },
};

const char *shim_dll(const char *dll)
{
	for (size_t i = 0; i < sizeof(dll_aliases) / sizeof(dll_aliases[0]); i++)
		if (!strncasecmp(dll, dll_aliases[i].prefix, strlen(dll_aliases[i].prefix)))
			return dll_aliases[i].dll;
	return dll;
}

static const struct shim_table {
	const struct shim *list;
	const size_t *count;
} shim_tables[] = {
#define TABLE(name) { name##_shims, &name##_shim_count }
	TABLE(peload), TABLE(crt), TABLE(thread), TABLE(module), TABLE(wide), TABLE(crt_stdio), TABLE(crt_math),
	TABLE(message), TABLE(ucrt),
#ifndef __x86_64__
	TABLE(crt32),
#endif
	TABLE(multibyte), TABLE(winrt), TABLE(winfile), TABLE(process), TABLE(launcher), TABLE(ucrt_startup),
	TABLE(splitpath),
#undef TABLE
};

void *find_shim(const char *dll, const char *name)
{
	dll = shim_dll(dll);
	for (size_t t = 0; t < sizeof(shim_tables) / sizeof(shim_tables[0]); t++)
		for (size_t i = 0; i < *shim_tables[t].count; i++)
			if (!strcasecmp(shim_tables[t].list[i].dll, dll) && !strcmp(shim_tables[t].list[i].name, name))
				return shim_tables[t].list[i].addr;
	return NULL;
}

/* --list-shims: "dll!name" per shim, then "prefix*=dll" per alias (pe_package.py reads both). */
static void list_shims(void)
{
	for (size_t t = 0; t < sizeof(shim_tables) / sizeof(shim_tables[0]); t++)
		for (size_t i = 0; i < *shim_tables[t].count; i++)
			printf("%s!%s\n", shim_tables[t].list[i].dll, shim_tables[t].list[i].name);
	for (size_t i = 0; i < sizeof(dll_aliases) / sizeof(dll_aliases[0]); i++)
		printf("%s*=%s\n", dll_aliases[i].prefix, dll_aliases[i].dll);
}

/* ---- the loader: every header rule is checked before anything is mapped ---- */

#define FILE_RELOCS_STRIPPED 0x0001
#define FILE_EXECUTABLE_IMAGE 0x0002
#define FILE_DLL 0x2000
#define SCN_CNT_INITIALIZED_DATA 0x40
#define SCN_CNT_UNINITIALIZED_DATA 0x80
#define SCN_MEM_EXECUTE 0x20000000
#define SCN_MEM_WRITE 0x80000000
#define MAX_SECTIONS 96		/* the Windows loader's own limit */
#define MAX_NAME 512		/* import names, as loaders/pe.py */

/*
 * The one image format this build runs: its optional header layout, pointer size (import thunks,
 * TLS directory fields) and the user space its ImageBase must fit in.
 */
#ifdef __x86_64__
#define PE_MACHINE 0x8664
#define PE_MAGIC 0x20b
#define PE_FORMAT "PE32+ x86-64"
#define OTHER_LOADER "x86 PE32 programs run with cerebro-peload32"
#define OPT_NDIRS 108		/* NumberOfRvaAndSizes; the data directories follow */
#define USER_SPACE_END (1ull << 47)
#else
#define PE_MACHINE 0x14c
#define PE_MAGIC 0x10b
#define PE_FORMAT "PE32 i386"
#define OTHER_LOADER "x86-64 PE32+ programs run with cerebro-peload"
#define OPT_NDIRS 92
#define USER_SPACE_END (1ull << 32)
#endif
#define PTR sizeof(void *)	/* an import thunk, IAT slot, TLS directory field or callback */
#define ORDINAL_FLAG (1ull << (8 * PTR - 1))
enum { DIR_IMPORT = 1, DIR_BASERELOC = 5, DIR_TLS = 9 };

struct section {
	char name[9];
	uint32_t va, span, raw, ptr, chars;	/* span: VirtualSize, or SizeOfRawData when that is 0 */
};

struct headers {
	uint32_t pe, opt, nsect, sect_table;
	uint64_t image_base;
	uint32_t entry, size_of_image, size_of_headers, ndirs, section_alignment, file_alignment;
	uint16_t chars;
	struct section sect[MAX_SECTIONS];
};

static struct headers hdr;

__attribute__((format(printf, 2, 3)))
static void require(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vdie(126, fmt, ap);
}

static int pow2(uint32_t v) { return v && !(v & (v - 1)); }
static uint64_t align_up(uint64_t v, uint32_t a) { return (v + a - 1) & ~(uint64_t)(a - 1); }

/* End RVA of the file-backed data (headers or a section's) holding rva; 0 when none does. */
static uint64_t file_data_end(uint64_t rva)
{
	if (rva < hdr.size_of_headers)
		return hdr.size_of_headers;
	for (uint32_t i = 0; i < hdr.nsect; i++) {
		const struct section *s = &hdr.sect[i];
		uint64_t end = (uint64_t)s->va + (s->raw < s->span ? s->raw : s->span);
		if (s->va <= rva && rva < end)
			return end;
	}
	return 0;
}

/* Like at(), but the bytes must come from the file (what loaders/pe.py's rva_to_offset accepts). */
static void *data_at(uint64_t rva, uint64_t len, const char *what)
{
	uint64_t end = file_data_end(rva);

	if (!end || len > end - rva)
		die(126, "%s at RVA %#llx (+%#llx) is not inside the file data of a section", what,
		    (unsigned long long)rva, (unsigned long long)len);
	return at(rva, len, what);
}

static uint16_t rd16(uint64_t rva, const char *what) { uint16_t v; memcpy(&v, data_at(rva, 2, what), 2); return v; }
static uint32_t rd32(uint64_t rva, const char *what) { uint32_t v; memcpy(&v, data_at(rva, 4, what), 4); return v; }
/* A pointer-sized field (import thunk, TLS directory VA): 8 bytes in PE32+, 4 in PE32. */
static uint64_t rd_ptr(uint64_t rva, const char *what)
{
	uint64_t v = 0;

	memcpy(&v, data_at(rva, PTR, what), PTR);	/* little-endian host: the low bytes */
	return v;
}

static const char *str_at(uint64_t rva, const char *what)
{
	const char *s = data_at(rva, 1, what);
	uint64_t room = file_data_end(rva) - rva;

	if (!memchr(s, 0, room < MAX_NAME ? room : MAX_NAME))
		die(126, "%s at RVA %#llx is not terminated within %d bytes of file data", what,
		    (unsigned long long)rva, MAX_NAME);
	return s;
}

/* The section whose memory holds rva, or NULL. */
static const struct section *section_at(uint64_t rva)
{
	for (uint32_t i = 0; i < hdr.nsect; i++)
		if (hdr.sect[i].va <= rva && rva < (uint64_t)hdr.sect[i].va + hdr.sect[i].span)
			return &hdr.sect[i];
	return NULL;
}

/* Code the loader is about to call (entry point, TLS callback) must lie in an executable section. */
static void require_code(uint64_t rva, const char *what)
{
	const struct section *s = section_at(rva);

	require(rva < hdr.size_of_image, "%s RVA %#llx lies outside the image (SizeOfImage %#x)", what,
		(unsigned long long)rva, hdr.size_of_image);
	require(s && (s->chars & SCN_MEM_EXECUTE), "%s RVA %#llx is not inside an executable section%s%s", what,
		(unsigned long long)rva, s ? " (it is in " : "", s ? s->name : "");
}

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		die(126, "%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (long)MAX_FILE || fseek(f, 0, SEEK_SET))
		die(126, "%s: cannot size the file (or over 1 GiB)", path);
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n)
		die(126, "%s: read failed", path);
	fclose(f);
	*size = n;
	return buf;
}

static uint32_t frd32(const uint8_t *f, size_t size, size_t off)
{
	uint32_t v;

	if (off > size || size - off < 4)
		die(126, "truncated PE header (offset %#zx)", off);
	memcpy(&v, f + off, 4);
	return v;
}

#ifdef PELOAD32
/*
 * binfmt_misc hands every MZ file to this x86-64 build: a PE32 i386 program goes on to the 32-bit
 * build (native_build.py compiles its path in), with the same arguments.
 */
static void hand_over_pe32(const uint8_t *f, size_t size, char **argv)
{
	uint32_t pe;
	uint16_t machine;

	if (size < 64 || f[0] != 'M' || f[1] != 'Z')
		return;
	memcpy(&pe, f + 0x3c, 4);
	if ((uint64_t)pe + 6 > size || memcmp(f + pe, "PE\0\0", 4))
		return;
	memcpy(&machine, f + pe + 4, 2);
	if (machine != 0x14c)
		return;
	execv(PELOAD32, argv);
	die(126, "cannot run the 32-bit loader %s: %s", PELOAD32, strerror(errno));
}
#endif

static void parse_headers(const uint8_t *f, size_t size, struct headers *h)
{
	if (size < 64 || f[0] != 'M' || f[1] != 'Z')
		die(126, "not a PE file (no MZ header)");
	h->pe = frd32(f, size, 0x3c);
	require(frd32(f, size, h->pe) == 0x4550, "no PE signature at offset %#x", h->pe);
	uint32_t coff = frd32(f, size, h->pe + 4), optinfo = frd32(f, size, h->pe + 20);
	uint32_t machine = coff & 0xffff, opt_size = optinfo & 0xffff;

	h->nsect = coff >> 16;
	h->chars = optinfo >> 16;
	h->opt = h->pe + 24;
	require(machine == PE_MACHINE, "machine %#x: only " PE_FORMAT " programs run in this loader (" OTHER_LOADER ")",
		machine);
	require((frd32(f, size, h->opt) & 0xffff) == PE_MAGIC, "not a " PE_FORMAT " image (optional header magic "
		"%#x)", frd32(f, size, h->opt) & 0xffff);
	require(!(h->chars & FILE_DLL), "this is a DLL, not a program");
	require(h->chars & FILE_EXECUTABLE_IMAGE, "not marked as an executable image (IMAGE_FILE_EXECUTABLE_IMAGE)");
	h->entry = frd32(f, size, h->opt + 16);
	h->image_base = PTR == 8 ? frd32(f, size, h->opt + 24) | (uint64_t)frd32(f, size, h->opt + 28) << 32 :
			frd32(f, size, h->opt + 28);
	h->section_alignment = frd32(f, size, h->opt + 32);
	h->file_alignment = frd32(f, size, h->opt + 36);
	h->size_of_image = frd32(f, size, h->opt + 56);
	h->size_of_headers = frd32(f, size, h->opt + 60);
	h->ndirs = frd32(f, size, h->opt + OPT_NDIRS);
	if (h->ndirs > 16)
		h->ndirs = 16;
	require(opt_size >= OPT_NDIRS + 4 + 8 * h->ndirs, "optional header size %u too small for %u data directories",
		opt_size, h->ndirs);
	h->sect_table = h->opt + opt_size;
	require(h->nsect >= 1 && h->nsect <= MAX_SECTIONS, "%u sections (1 to %d allowed)", h->nsect, MAX_SECTIONS);
	require(pow2(h->section_alignment) && h->section_alignment >= PAGE,
		"SectionAlignment %#x is not a power of two of at least the %#x-byte page", h->section_alignment, PAGE);
	require(pow2(h->file_alignment) && h->file_alignment >= 512 && h->file_alignment <= 65536 &&
		h->file_alignment <= h->section_alignment,
		"FileAlignment %#x is not a power of two from 512 to 64 KiB and at most SectionAlignment",
		h->file_alignment);
	require(h->size_of_image && h->size_of_image <= MAX_IMAGE, "SizeOfImage %#x is 0 or over 1 GiB",
		h->size_of_image);
	require(!(h->image_base & 0xffff) && h->image_base < USER_SPACE_END - h->size_of_image,
		"ImageBase %#llx is not a 64 KiB-aligned user-space address", (unsigned long long)h->image_base);
	require((uint64_t)h->sect_table + 40ull * h->nsect <= h->size_of_headers,
		"the section table (ends at %#llx) lies outside SizeOfHeaders %#x",
		(unsigned long long)h->sect_table + 40ull * h->nsect, h->size_of_headers);
	require(h->size_of_headers % h->file_alignment == 0 && h->size_of_headers <= size,
		"SizeOfHeaders %#x is not FileAlignment-aligned or lies past the end of the file", h->size_of_headers);
}

/*
 * The section rules, as Windows applies them: sections follow the headers in memory, aligned
 * and contiguous, inside SizeOfImage; file data is aligned, after the headers, inside the file,
 * and not shared between sections; a section of only uninitialized data has no file data (the
 * old loader copied file offset 0 into .bss, so mingw's startup lock read as taken: a hang).
 */
static void read_sections(const uint8_t *f, size_t size, struct headers *h)
{
	uint64_t next = align_up(h->size_of_headers, h->section_alignment);

	for (uint32_t i = 0; i < h->nsect; i++) {
		size_t off = h->sect_table + 40 * (size_t)i;
		struct section *s = &h->sect[i];
		uint32_t vsize = frd32(f, size, off + 8);

		for (int c = 0; c < 8; c++)
			s->name[c] = isprint(f[off + c]) || !f[off + c] ? (char)f[off + c] : '?';
		s->name[8] = 0;
		s->va = frd32(f, size, off + 12);
		s->raw = frd32(f, size, off + 16);
		s->ptr = frd32(f, size, off + 20);
		s->chars = frd32(f, size, off + 36);
		s->span = vsize ? vsize : s->raw;
		require(s->va == next, "section %s starts at RVA %#x, not at %#llx where the headers or the previous "
			"section end (sections must be aligned and contiguous)", s->name, s->va,
			(unsigned long long)next);
		require((uint64_t)s->va + s->span <= h->size_of_image,
			"section %s (RVA %#x + %#x) extends past SizeOfImage %#x", s->name, s->va, s->span,
			h->size_of_image);
		next = align_up((uint64_t)s->va + s->span, h->section_alignment);
		if (!s->raw)
			continue;
		require((s->chars & (SCN_CNT_INITIALIZED_DATA | SCN_CNT_UNINITIALIZED_DATA)) !=
			SCN_CNT_UNINITIALIZED_DATA, "section %s holds only uninitialized data but claims %#x bytes "
			"of file data (SizeOfRawData must be 0)", s->name, s->raw);
		require(s->ptr % h->file_alignment == 0, "section %s file data at %#x is not aligned to FileAlignment "
			"%#x", s->name, s->ptr, h->file_alignment);
		require(s->ptr >= h->size_of_headers, "section %s file data at %#x overlaps the headers "
			"(SizeOfHeaders %#x)", s->name, s->ptr, h->size_of_headers);
		require((uint64_t)s->ptr + s->raw <= size, "section %s file data (%#x + %#x) lies past the end of "
			"the file (%#zx bytes)", s->name, s->ptr, s->raw, size);
		for (uint32_t j = 0; j < i; j++) {
			const struct section *o = &h->sect[j];
			require(!o->raw || s->ptr >= (uint64_t)o->ptr + o->raw || o->ptr >= (uint64_t)s->ptr + s->raw,
				"sections %s and %s share file data", o->name, s->name);
		}
	}
}

static void dir(const uint8_t *f, size_t size, const struct headers *h, int i, uint32_t *rva, uint32_t *len)
{
	*rva = *len = 0;
	if ((uint32_t)i < h->ndirs) {
		*rva = frd32(f, size, h->opt + OPT_NDIRS + 4 + 8 * i);
		*len = frd32(f, size, h->opt + OPT_NDIRS + 8 + 8 * i);
	}
}

static void map_image(const uint8_t *f, int force_relocate)
{
	image_size = align_up(hdr.size_of_image, PAGE);
	void *want = force_relocate ? NULL : (void *)(uintptr_t)hdr.image_base;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (want ? MAP_FIXED_NOREPLACE : 0);

	image = mmap(want, image_size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (image == MAP_FAILED && want)
		image = mmap(NULL, image_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (image == MAP_FAILED)
		die(126, "cannot map %zu bytes for the image", image_size);
	page_prot = calloc(image_size / PAGE, 1);
	if (!page_prot)
		die(126, "out of memory");
	memset(page_prot, PAGE_READONLY, image_size / PAGE);
	memcpy(image, f, hdr.size_of_headers);
	for (uint32_t i = 0; i < hdr.nsect; i++) {
		const struct section *s = &hdr.sect[i];
		int exec = !!(s->chars & SCN_MEM_EXECUTE), write = !!(s->chars & SCN_MEM_WRITE);
		uint8_t prot = exec ? (write ? PAGE_EXECUTE_READWRITE : PAGE_EXECUTE_READ) :
			       (write ? PAGE_READWRITE : PAGE_READONLY);

		memcpy(at(s->va, s->raw < s->span ? s->raw : s->span, "section"), f + s->ptr,
		       s->raw < s->span ? s->raw : s->span);
		for (size_t p = s->va / PAGE; p < align_up((uint64_t)s->va + s->span, PAGE) / PAGE; p++)
			page_prot[p] = prot;
	}
}

/* Walks (and checks) every base relocation block; applies them when the image moved. */
static void relocate(const uint8_t *f, size_t size)
{
	uint64_t delta = (uint64_t)(uintptr_t)image - hdr.image_base;
	uint32_t rva, len;

	dir(f, size, &hdr, DIR_BASERELOC, &rva, &len);
	if (delta && (!rva || (hdr.chars & FILE_RELOCS_STRIPPED)))
		die(126, "image cannot be placed at its preferred base %#llx and has no relocations",
		    (unsigned long long)hdr.image_base);
	if (!rva)
		return;
	data_at(rva, len, "base relocation directory");
	for (uint32_t pos = 0; pos + 8 <= len;) {
		uint32_t page = rd32(rva + pos, "relocation block"), block = rd32(rva + pos + 4, "relocation block");
		if (block < 8 || block > len - pos)
			die(126, "bad base relocation block size %u at RVA %#x", block, rva + pos);
		for (uint32_t e = 8; e + 2 <= block; e += 2) {
			uint16_t entry = rd16(rva + pos + e, "relocation");
			uint64_t where = (uint64_t)page + (entry & 0xfff);
			uint32_t v32;
			uint64_t v64;

			switch (entry >> 12) {
			case 0:
				break;
			case 3:	/* HIGHLOW */
				memcpy(&v32, at(where, 4, "relocation target"), 4);
				v32 += (uint32_t)delta;
				memcpy(at(where, 4, "relocation target"), &v32, 4);
				break;
			case 10:	/* DIR64: PE32+ only */
				if (PTR == 8) {
					memcpy(&v64, at(where, 8, "relocation target"), 8);
					v64 += delta;
					memcpy(at(where, 8, "relocation target"), &v64, 8);
					break;
				}
				/* fall through */
			default:
				die(126, "unsupported base relocation type %u at RVA %#llx in a %s image", entry >> 12,
				    (unsigned long long)where, PTR == 8 ? "PE32+" : "PE32");
			}
		}
		pos += block;
	}
}

/* Import names the loader has no shim for, gathered so one refusal lists them all. */
struct missing {
	struct out text;	/* "DLL: a, b; DLL2: c" */
	const char *dll;	/* the DLL the last name was added under */
	unsigned count;
};

#define MISSING_TEXT_MAX (64u << 10)	/* a hostile table cannot make the refusal unbounded */

static void add_missing(struct missing *m, const char *dll, const char *fn)
{
	m->count++;
	if (m->text.len > MISSING_TEXT_MAX)
		return;
	if (!m->dll || strcasecmp(m->dll, dll)) {
		if (m->dll)
			out_add(&m->text, "; ", 2);
		out_add(&m->text, dll, strlen(dll));
		out_add(&m->text, ": ", 2);
	} else {
		out_add(&m->text, ", ", 2);
	}
	m->dll = dll;
	out_add(&m->text, fn, strlen(fn));
}

/*
 * One line naming every missing import, grouped by DLL (one missing: "unsupported import DLL!name");
 * pe_package.refusal() words the Python pre-check the same way.
 */
__attribute__((noreturn))
static void refuse_missing(struct missing *m)
{
	if (m->count == 1)	/* the text is "DLL: name" */
		die(127, "unsupported import %s!%s", m->dll, m->text.p + strlen(m->dll) + 2);
	for (char *c = m->text.p; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	fflush(stdout);
	fprintf(stderr, "cerebro-peload: unsupported imports (%u): %s%s\n", m->count, m->text.p,
		m->text.len > MISSING_TEXT_MAX ? " ..." : "");
	exit(127);
}

/* Binds every import; refuses all those without a shim at once, before any program code runs. */
static void bind_imports(const uint8_t *f, size_t size)
{
	struct missing missing = { 0 };
	char ordinal[16];
	uint32_t rva, len;

	dir(f, size, &hdr, DIR_IMPORT, &rva, &len);
	for (uint32_t d = 0; rva; d++) {
		uint64_t desc = (uint64_t)rva + 20ull * d;
		require(d <= 65536, "import directory not terminated");
		data_at(desc, 20, "import descriptor");
		uint32_t lookup = rd32(desc, "import descriptor"), name = rd32(desc + 12, "import descriptor");
		uint32_t iat = rd32(desc + 16, "import descriptor");
		if (!lookup && !name && !iat)
			break;
		const char *dll = str_at(name, "import DLL name");
		uint32_t table = lookup ? lookup : iat;
		for (uint64_t t = 0;; t++) {
			require(t <= 65536, "import table of %s not terminated", dll);
			uint64_t thunk = rd_ptr(table + PTR * t, "import lookup table");
			void *addr = NULL;
			const char *fn = ordinal;

			if (!thunk)
				break;
			if (thunk & ORDINAL_FLAG) {	/* by ordinal: no shim has one */
				snprintf(ordinal, sizeof(ordinal), "#%u", (unsigned)(thunk & 0xffff));
			} else {
				fn = str_at((thunk & 0x7fffffff) + 2, "import name");
				addr = find_shim(dll, fn);
			}
			if (!addr) {
				add_missing(&missing, dll, fn);
				continue;
			}
			memcpy(data_at(iat + PTR * t, PTR, "import address table"), &addr, PTR);
		}
	}
	if (missing.count)
		refuse_missing(&missing);
}

static void protect_sections(void)
{
	size_t pages = image_size / PAGE;

	for (size_t p = 0; p < pages;) {
		size_t end = p;
		while (end < pages && page_prot[end] == page_prot[p])
			end++;
		if (mprotect(image + p * PAGE, (end - p) * PAGE, host_prot(page_prot[p])))
			die(126, "mprotect failed: %s", strerror(errno));
		p = end;
	}
}

/* The TLS directory, checked once at load: what each new thread's TLS block and callbacks come from. */
static struct {
	uint64_t template_rva, template_len, zero_len;
	uint64_t callbacks[257];	/* VAs checked to lie in executable sections; 0-terminated */
} tls;

static void *new_tls_block(void)
{
	uint8_t *block;

	if (!tls.template_len && !tls.zero_len)
		return NULL;
	block = calloc(1, tls.template_len + tls.zero_len + 16);
	if (!block)
		die(126, "out of memory");
	memcpy(block, at(tls.template_rva, tls.template_len, "TLS data"), tls.template_len);
	return block;
}

/* Where the TEB and PEB fields the program reads lie (NT_TIB and PEB layouts of each architecture). */
#ifdef __x86_64__
enum { TEB_STACK_BASE = 0x08, TEB_STACK_LIMIT = 0x10, TEB_SELF = 0x30, TEB_TLS_POINTER = 0x58, TEB_PEB = 0x60,
       PEB_IMAGE_BASE = 0x10, PEB_PROCESS_PARAMETERS = 0x20 };
#else
enum { TEB_EXCEPTION_LIST = 0x00, TEB_STACK_BASE = 0x04, TEB_STACK_LIMIT = 0x08, TEB_SELF = 0x18,
       TEB_TLS_POINTER = 0x2c, TEB_PEB = 0x30, PEB_IMAGE_BASE = 0x08, PEB_PROCESS_PARAMETERS = 0x10 };
#endif
#define PEB_PARAMETERS_AT 0x800	/* a zeroed RTL_USER_PROCESS_PARAMETERS inside the PEB's page (MSVC's exit reads Flags) */
#define TEB_SIZE 0x2000
#define TEB_TLS_SLOTS 0x1800	/* the array ThreadLocalStoragePointer points at: [0] is the image's block */

static void put_ptr(uint8_t *field, uintptr_t v) { memcpy(field, &v, sizeof(v)); }

/*
 * Makes teb the calling thread's NtCurrentTeb(): the gs base on x64; on i386 the base of a GDT
 * TLS descriptor (set_thread_area; glibc holds gs with another) loaded into fs. The descriptor
 * number is allocated by the first thread and reused by the others (each thread has its own copy).
 */
static void set_teb_register(uint8_t *teb)
{
#ifdef __x86_64__
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, teb))
		die(126, "arch_prctl(ARCH_SET_GS) failed: %s", strerror(errno));
#else
	static int entry = -1;
	struct user_desc desc = { .entry_number = (unsigned)entry, .base_addr = (uintptr_t)teb, .limit = 0xfffff,
				  .seg_32bit = 1, .limit_in_pages = 1, .useable = 1 };
	uint16_t selector;

	if (syscall(SYS_set_thread_area, &desc))
		die(126, "set_thread_area failed: %s", strerror(errno));
	entry = (int)desc.entry_number;
	selector = (uint16_t)(desc.entry_number << 3 | 3);	/* GDT, ring 3 */
	__asm__ volatile("movw %0, %%fs" : : "r"(selector));
#endif
}

/* A TEB: NtCurrentTeb(), the stack bounds and the native TLS slot array (inside the TEB). */
static uint8_t *setup_teb(void *tls_block, size_t stack_size)
{
	static uint8_t *peb;
	uint8_t *teb = calloc(1, TEB_SIZE);
	void **tls_slots = (void **)(teb + TEB_TLS_SLOTS);
	uintptr_t sp = (uintptr_t)&teb;

	if (!peb)
		peb = calloc(1, 0x1000);
	if (!teb || !peb)
		die(126, "out of memory");
#ifndef __x86_64__
	put_ptr(teb + TEB_EXCEPTION_LIST, UINTPTR_MAX);	/* the end of an empty SEH chain */
#endif
	put_ptr(teb + TEB_STACK_BASE, (sp + 0xfff) & ~(uintptr_t)0xfff);
	put_ptr(teb + TEB_STACK_LIMIT, sp - stack_size);
	put_ptr(teb + TEB_SELF, (uintptr_t)teb);
	tls_slots[0] = tls_block;
	put_ptr(teb + TEB_TLS_POINTER, (uintptr_t)tls_slots);
	put_ptr(teb + TEB_PEB, (uintptr_t)peb);
	put_ptr(peb + PEB_IMAGE_BASE, (uintptr_t)image);
	put_ptr(peb + PEB_PROCESS_PARAMETERS, (uintptr_t)(peb + PEB_PARAMETERS_AT));
	set_teb_register(teb);
	return teb;
}

/* Native TLS: checks the directory and every callback, notes them in `tls`, zeroes the index. */
static void setup_tls(const uint8_t *f, size_t size)
{
	uint32_t rva, len;
	uint64_t start, end, index, zero, list;

	dir(f, size, &hdr, DIR_TLS, &rva, &len);
	if (!rva)
		return;
	data_at(rva, 4 * PTR + 8, "TLS directory");
	start = rd_ptr(rva, "TLS directory");
	end = rd_ptr(rva + PTR, "TLS directory");
	index = rd_ptr(rva + 2 * PTR, "TLS directory");
	list = rd_ptr(rva + 3 * PTR, "TLS directory");
	zero = rd32(rva + 4 * PTR, "TLS directory");
	if (end < start || end - start > MAX_IMAGE || zero > MAX_IMAGE)
		die(126, "bad TLS directory");
	if (end > start) {
		tls.template_rva = va_to_rva(start, "TLS data");
		at(tls.template_rva, end - start, "TLS data");
	}
	tls.template_len = end - start;
	tls.zero_len = zero;
	if (index)
		memset(at(va_to_rva(index, "TLS index"), 4, "TLS index"), 0, 4);
	if (!list)
		return;
	uint64_t list_rva = va_to_rva(list, "TLS callback list");
	for (int i = 0;; i++) {
		require(i < 256, "TLS callback list not terminated within 256 entries");
		uint64_t cb = rd_ptr(list_rva + PTR * i, "TLS callback list");
		if (!cb)
			return;
		require_code(va_to_rva(cb, "TLS callback"), "TLS callback");
		tls.callbacks[i] = cb;
	}
}

/*
 * Windows runs TLS callbacks (and DllMain) under its loader lock, one thread
 * at a time, and programs count on it: a callback's plain `detached++` from
 * threads ending together lost counts here (attach 4 detach 3). Recursive:
 * a callback may load a library or start a thread.
 */
static pthread_mutex_t loader_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static void run_tls_callbacks(uint32_t reason)
{
	pthread_mutex_lock(&loader_lock);
	for (const uint64_t *cb = tls.callbacks; *cb; cb++)
		((win_tls_fn)(uintptr_t)*cb)(image, reason, NULL);
	pthread_mutex_unlock(&loader_lock);
}

enum { DLL_PROCESS_ATTACH = 1, DLL_THREAD_ATTACH = 2, DLL_THREAD_DETACH = 3 };

void *thread_attach(size_t stack_size)
{
	uint8_t *teb = setup_teb(new_tls_block(), stack_size);

	run_tls_callbacks(DLL_THREAD_ATTACH);
	return teb;
}

void thread_detach(void *teb)
{
	run_tls_callbacks(DLL_THREAD_DETACH);
	free(((void **)((uint8_t *)teb + TEB_TLS_SLOTS))[0]);
	free(teb);
}

/*
 * One Windows command line for @argv, quoted so that the Microsoft C
 * runtime's parser (CommandLineToArgvW) gives the same words back: each
 * word in quotes, a '"' written as \", and the backslashes before a '"' or
 * the closing quote doubled (MSVC-built programs parse GetCommandLine
 * themselves; before, "x\" reached them as x").
 */
static char *join_command_line(int argc, char **argv)
{
	size_t n = 1;

	for (int i = 0; i < argc; i++)
		n += 2 * strlen(argv[i]) + 3;
	char *s = calloc(1, n), *p = s;
	if (!s)
		die(126, "out of memory");
	for (int i = 0; i < argc; i++) {
		size_t slashes = 0;

		if (i)
			*p++ = ' ';
		*p++ = '"';
		for (const char *c = argv[i]; *c; c++) {
			if (*c == '\\') {
				slashes++;
				continue;
			}
			slashes = *c == '"' ? 2 * slashes + 1 : slashes;
			memset(p, '\\', slashes);
			p += slashes;
			*p++ = *c;
			slashes = 0;
		}
		memset(p, '\\', 2 * slashes);	/* before the closing quote */
		p += 2 * slashes;
		*p++ = '"';
	}
	return s;
}

int main(int argc, char **argv)
{
	int force_relocate = 0, first = 1;
	size_t size;

	if (argc == 2 && !strcmp(argv[1], "--list-shims")) {
		list_shims();
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--relocate")) {
		force_relocate = 1;
		first = 2;
	}
	if (argc <= first)
		die(2, "usage: cerebro-peload [--relocate] PROGRAM.exe [ARGS...] | --list-shims");
	fault_report_install(argv[first]);
	uint8_t *file = read_file(argv[first], &size);
#ifdef PELOAD32
	hand_over_pe32(file, size, argv);
#endif
	parse_headers(file, size, &hdr);
	read_sections(file, size, &hdr);
	require_code(hdr.entry, "entry point");
	map_image(file, force_relocate);
	fault_report_set_image(image, image_size);
	relocate(file, size);
	bind_imports(file, size);
	setup_tls(file, size);
	free(file);
	protect_sections();
	g_argc = argc - first;
	g_argv = argv + first;
	g_cmdline = join_command_line(g_argc, g_argv);
	setup_teb(new_tls_block(), 8u << 20);
	run_tls_callbacks(DLL_PROCESS_ATTACH);
	int code = ((win_entry_fn)(image + hdr.entry))();
	s_exit(code);
	return code;
}
