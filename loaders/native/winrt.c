// SPDX-License-Identifier: MIT
/*
 * The KERNEL32 surface an MSVC-built program's statically linked C runtime (the UCRT inside the
 * .exe, as in pip's ninja wheel) calls before and around main: the process heap, fiber-local
 * storage, pointer encoding, the wide command line and environment, code pages in the "C" locale,
 * slim reader/writer locks and condition variables, console queries and the OS version check.
 * Locale functions the "C" locale never reaches fail loudly (exit 126) when called.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "shims.h"

extern char **environ;

enum { ERROR_INVALID_HANDLE = 6, ERROR_NOT_ENOUGH_MEMORY = 8, ERROR_INVALID_PARAMETER = 87,
       ERROR_MOD_NOT_FOUND = 126, ERROR_OLD_WIN_VERSION = 1150 };

#define CODE_PAGE 1252		/* bytes are Latin-1 both ways (peload.c's MultiByteToWideChar) */
#define PROCESS_HEAP ((void *)(uintptr_t)0x5d000)	/* not a pointer; the one heap there is */
#define HEAP_ZERO_MEMORY 0x8

__attribute__((noreturn)) static void not_implemented(const char *name)
{
	die(126, "KERNEL32!%s was called: it is not implemented (only the \"C\" locale is)", name);
}

/* ---- the process heap: malloc ---- */

static STDCALL void *s_GetProcessHeap(void) { return PROCESS_HEAP; }

static int heap_ok(void *heap)
{
	if (heap != PROCESS_HEAP)
		g_last_error = ERROR_INVALID_HANDLE;
	return heap == PROCESS_HEAP;
}

static STDCALL void *s_HeapAlloc(void *heap, uint32_t flags, size_t n)
{
	if (!heap_ok(heap))
		return NULL;
	return flags & HEAP_ZERO_MEMORY ? calloc(1, n ? n : 1) : malloc(n ? n : 1);
}

static STDCALL int s_HeapFree(void *heap, uint32_t flags, void *p)
{
	(void)flags;
	if (!heap_ok(heap))
		return 0;
	free(p);
	return 1;
}

static STDCALL void *s_HeapReAlloc(void *heap, uint32_t flags, void *p, size_t n)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	uint8_t *q;

	if (!heap_ok(heap))
		return NULL;
	q = realloc(p, n ? n : 1);
	if (q && flags & HEAP_ZERO_MEMORY && n > old)
		memset(q + old, 0, n - old);
	return q;
}

static STDCALL size_t s_HeapSize(void *heap, uint32_t flags, const void *p)
{
	(void)flags;
	return heap_ok(heap) ? malloc_usable_size((void *)p) : (size_t)-1;
}

/* LocalAlloc is not provided (FormatMessageA refuses ALLOCATE_BUFFER), so only NULL can be freed. */
static STDCALL void *s_LocalFree(void *p)
{
	if (p)
		die(126, "KERNEL32!LocalFree of %p, which no LocalAlloc returned", p);
	return NULL;
}

/* ---- fiber-local storage: per thread, as the TLS slots (no fibers here); callbacks are not run ---- */

#define FLS_SLOTS 128
static __thread void *fls_values[FLS_SLOTS];
static _Atomic uint32_t fls_next;

static STDCALL uint32_t s_FlsAlloc(void *callback)
{
	uint32_t i = atomic_fetch_add(&fls_next, 1);

	(void)callback;
	if (i < FLS_SLOTS)
		return i;
	g_last_error = ERROR_NOT_ENOUGH_MEMORY;
	return 0xffffffffu;	/* FLS_OUT_OF_INDEXES */
}

static STDCALL void *s_FlsGetValue(uint32_t i) { return i < FLS_SLOTS ? fls_values[i] : NULL; }

static STDCALL int s_FlsSetValue(uint32_t i, void *v)
{
	if (i >= FLS_SLOTS) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	fls_values[i] = v;
	return 1;
}

static STDCALL int s_FlsFree(uint32_t i) { return i < FLS_SLOTS; }

/* EncodePointer/DecodePointer only need to be inverses of each other. */
static STDCALL void *s_EncodePointer(void *p) { return p; }
static STDCALL void s_InitializeSListHead(void *head) { memset(head, 0, 2 * sizeof(void *)); }
static STDCALL int s_IsDebuggerPresent(void) { return 0; }

/* PF_* feature numbers answered from cpuid; any other feature is absent. */
static STDCALL int s_IsProcessorFeaturePresent(uint32_t feature)
{
	switch (feature) {
	case 3: return __builtin_cpu_supports("mmx");		/* PF_MMX_INSTRUCTIONS_AVAILABLE */
	case 6: return __builtin_cpu_supports("sse");		/* PF_XMMI_INSTRUCTIONS_AVAILABLE */
	case 10: return __builtin_cpu_supports("sse2");		/* PF_XMMI64_INSTRUCTIONS_AVAILABLE */
	case 13: return __builtin_cpu_supports("sse3");		/* PF_SSE3_INSTRUCTIONS_AVAILABLE */
	case 23: return 1;	/* PF_FASTFAIL_AVAILABLE: int 0x29 faults, and the fault is reported */
	case 36: return __builtin_cpu_supports("ssse3");
	case 37: return __builtin_cpu_supports("sse4.1");
	case 38: return __builtin_cpu_supports("sse4.2");
	case 39: return __builtin_cpu_supports("avx");
	case 40: return __builtin_cpu_supports("avx2");
	case 41: return __builtin_cpu_supports("avx512f");
	default: return 0;
	}
}

/* ---- startup: STARTUPINFOW, the wide command line and environment, module names ---- */

static STDCALL void s_GetStartupInfoW(uint8_t *si)
{
	size_t size = sizeof(void *) == 8 ? 104 : 68;

	memset(si, 0, size);
	si[0] = (uint8_t)size;
}

/* s as UTF-16 (each byte one unit, as MultiByteToWideChar), n units; NULL when out of memory. */
static uint16_t *widen(const char *s, size_t n)
{
	uint16_t *w = malloc((n + 1) * sizeof(*w));

	if (!w)
		return NULL;
	for (size_t i = 0; i < n; i++)
		w[i] = (uint8_t)s[i];
	w[n] = 0;
	return w;
}

static STDCALL uint16_t *s_GetCommandLineW(void)
{
	static uint16_t *line;

	if (!line) {
		typedef STDCALL const char *(*command_line_fn)(void);
		const char *a = ((command_line_fn)find_shim("kernel32.dll", "GetCommandLineA"))();

		if (!(line = widen(a, strlen(a))))
			die(126, "out of memory");
	}
	return line;
}

/* "NAME=value\0...\0\0" in UTF-16, freed by FreeEnvironmentStringsW. */
static STDCALL uint16_t *s_GetEnvironmentStringsW(void)
{
	size_t n = 1, at = 0;
	uint16_t *block;

	for (char **e = environ; *e; e++)
		n += strlen(*e) + 1;
	if (!(block = malloc(n * sizeof(*block)))) {
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return NULL;
	}
	for (char **e = environ; *e; e++)
		for (const char *c = *e;; c++) {
			block[at++] = (uint8_t)*c;
			if (!*c)
				break;
		}
	block[at] = 0;
	return block;
}

static STDCALL int s_FreeEnvironmentStringsW(uint16_t *block) { free(block); return 1; }

static STDCALL uint32_t s_GetModuleFileNameW(void *module, uint16_t *buf, uint32_t size)
{
	typedef STDCALL uint32_t (*name_fn)(void *, char *, uint32_t);
	char *narrow = size ? malloc(size) : NULL;
	uint32_t len;

	if (size && !narrow) {
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return 0;
	}
	len = ((name_fn)find_shim("kernel32.dll", "GetModuleFileNameA"))(module, narrow, size);
	for (uint32_t i = 0; i < len && i < size; i++)
		buf[i] = (uint8_t)narrow[i];
	if (len < size)
		buf[len] = 0;
	else if (size)
		buf[size - 1] = 0;
	free(narrow);
	return len;
}

#define MODULE_FROM_ADDRESS 0x4	/* GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS */

/* The program itself (no name, or an address inside it); any named DLL is not loaded here. */
static STDCALL int s_GetModuleHandleExW(uint32_t flags, const void *name, void **module)
{
	const uint8_t *image = loaded_image();
	int self = !name;

	if (flags & MODULE_FROM_ADDRESS) {
		typedef STDCALL size_t (*query_fn)(const void *, void *, size_t);
		uint8_t info[48];

		/* MEMORY_BASIC_INFORMATION.AllocationBase: the image for any address inside it */
		self = ((query_fn)find_shim("kernel32.dll", "VirtualQuery"))(name, info, sizeof(info)) &&
		       !memcmp(info + sizeof(void *), &image, sizeof(image));
	}
	*module = self ? (void *)image : NULL;
	if (!self)
		g_last_error = ERROR_MOD_NOT_FOUND;
	return self;
}

/* ---- code pages and the "C" locale ---- */

static STDCALL uint32_t s_GetACP(void) { return CODE_PAGE; }
static STDCALL int s_IsValidCodePage(uint32_t cp) { return cp == CODE_PAGE; }

struct cp_info {	/* CPINFO */
	uint32_t max_char_size;
	uint8_t default_char[2], lead_bytes[12];
};

static STDCALL int s_GetCPInfo(uint32_t cp, struct cp_info *info)
{
	if (cp != CODE_PAGE && cp != 0 && cp != 1) {	/* CP_ACP, CP_OEMCP */
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	*info = (struct cp_info){ .max_char_size = 1, .default_char = { '?' } };
	return 1;
}

enum { C1_UPPER = 1, C1_LOWER = 2, C1_DIGIT = 4, C1_SPACE = 8, C1_PUNCT = 0x10, C1_CNTRL = 0x20,
       C1_BLANK = 0x40, C1_XDIGIT = 0x80, C1_ALPHA = 0x100, C1_DEFINED = 0x200 };

/* The CT_CTYPE1 class of a Latin-1 character (U+0000-U+00FF, the code page's bytes). */
static uint16_t latin1_class(unsigned c)
{
	int upper = (c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7);
	int lower = (c >= 'a' && c <= 'z') || (c >= 0xdf && c != 0xf7);
	int digit = c >= '0' && c <= '9';
	int cntrl = c < 32 || (c >= 127 && c < 0xa0);
	int space = (c >= 9 && c <= 13) || c == ' ' || c == 0xa0;

	return (uint16_t)(C1_DEFINED | (upper ? C1_UPPER | C1_ALPHA : 0) | (lower ? C1_LOWER | C1_ALPHA : 0) |
			  (digit ? C1_DIGIT : 0) | (space ? C1_SPACE : 0) | (cntrl ? C1_CNTRL : 0) |
			  (c == ' ' || c == '\t' || c == 0xa0 ? C1_BLANK : 0) |
			  (!upper && !lower && !digit && !cntrl && !space ? C1_PUNCT : 0) |
			  (digit || ((c | 32) >= 'a' && (c | 32) <= 'f' && c < 128) ? C1_XDIGIT : 0));
}

/* CT_CTYPE1 classes of Latin-1 characters; other types or characters: exit 126. */
static STDCALL int s_GetStringTypeW(uint32_t type, const uint16_t *src, int n, uint16_t *out)
{
	if (type != 1)
		not_implemented("GetStringTypeW (other than CT_CTYPE1)");
	if (n < 0)
		for (n = 0; src[n]; n++)
			;
	for (int i = 0; i < n; i++) {
		if (src[i] > 0xff)
			not_implemented("GetStringTypeW (characters past U+00FF)");
		out[i] = latin1_class(src[i]);
	}
	return 1;
}

#define LCMAP_LOWERCASE 0x100
#define LCMAP_UPPERCASE 0x200

/* Upper or lower case of Latin-1 text (the one mapping the CRT asks for its case tables). */
static int map_case(uint32_t flags, const uint16_t *src, int n, uint16_t *dst, int cap)
{
	if (flags != LCMAP_LOWERCASE && flags != LCMAP_UPPERCASE)
		not_implemented("LCMapString (other than LCMAP_UPPERCASE or LCMAP_LOWERCASE)");
	if (n < 0)
		for (n = 0; src[n++];)
			;
	if (!cap)
		return n;
	if (cap < n) {
		g_last_error = 122;	/* ERROR_INSUFFICIENT_BUFFER */
		return 0;
	}
	for (int i = 0; i < n; i++) {
		unsigned c = src[i], cls;

		if (c > 0xff)
			not_implemented("LCMapString (characters past U+00FF)");
		cls = latin1_class(c);
		dst[i] = (uint16_t)c;
		if (flags == LCMAP_UPPERCASE && cls & C1_LOWER && c != 0xdf && c != 0xff)	/* ß, ÿ: no Latin-1 upper */
			dst[i] = (uint16_t)(c - 32);
		else if (flags == LCMAP_LOWERCASE && cls & C1_UPPER)
			dst[i] = (uint16_t)(c + 32);
	}
	return n;
}

static STDCALL int s_LCMapStringEx(const uint16_t *locale, uint32_t flags, const uint16_t *src, int n, uint16_t *dst,
				   int cap, void *version, void *reserved, intptr_t sort_handle)
{
	(void)locale; (void)version; (void)reserved; (void)sort_handle;
	return map_case(flags, src, n, dst, cap);
}

static STDCALL int s_LCMapStringW(uint32_t lcid, uint32_t flags, const uint16_t *src, int n, uint16_t *dst, int cap)
{
	(void)lcid;
	return map_case(flags, src, n, dst, cap);
}
static STDCALL int s_CompareStringW(void) { not_implemented("CompareStringW"); }
static STDCALL int s_GetLocaleInfoW(void) { not_implemented("GetLocaleInfoW"); }
static STDCALL int s_IsValidLocale(void) { not_implemented("IsValidLocale"); }
static STDCALL int s_GetUserDefaultLCID(void) { not_implemented("GetUserDefaultLCID"); }
static STDCALL int s_EnumSystemLocalesW(void) { not_implemented("EnumSystemLocalesW"); }

/* ---- slim reader/writer locks and condition variables: a host object behind the guest's word ---- */

static void *lazy_object(void *word, size_t size, void (*init)(void *))
{
	_Atomic(void *) *slot = word;
	void *o = atomic_load(slot), *expected = NULL;

	if (o)
		return o;
	if (!(o = malloc(size)))
		die(126, "out of memory");
	init(o);
	if (atomic_compare_exchange_strong(slot, &expected, o))
		return o;
	free(o);	/* another thread won */
	return expected;
}

static void init_mutex(void *m) { pthread_mutex_init(m, NULL); }
static void init_cond(void *c) { pthread_cond_init(c, NULL); }
static pthread_mutex_t *srw_mutex(void *lock) { return lazy_object(lock, sizeof(pthread_mutex_t), init_mutex); }

static STDCALL void s_AcquireSRWLockExclusive(void *lock) { pthread_mutex_lock(srw_mutex(lock)); }
static STDCALL void s_ReleaseSRWLockExclusive(void *lock) { pthread_mutex_unlock(srw_mutex(lock)); }

static STDCALL void s_WakeAllConditionVariable(void *cv)
{
	pthread_cond_broadcast(lazy_object(cv, sizeof(pthread_cond_t), init_cond));
}

#define ERROR_TIMEOUT 1460
#define CONDITION_VARIABLE_LOCKMODE_SHARED 1

static STDCALL int s_SleepConditionVariableSRW(void *cv, void *lock, uint32_t ms, uint32_t flags)
{
	pthread_cond_t *c = lazy_object(cv, sizeof(pthread_cond_t), init_cond);
	struct timespec t;

	if (flags & CONDITION_VARIABLE_LOCKMODE_SHARED)
		not_implemented("SleepConditionVariableSRW (shared mode)");
	if (ms == 0xffffffffu)
		return !pthread_cond_wait(c, srw_mutex(lock));
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	if (pthread_cond_timedwait(c, srw_mutex(lock), &t)) {
		g_last_error = ERROR_TIMEOUT;
		return 0;
	}
	return 1;
}

static STDCALL int s_InitializeCriticalSectionEx(void *cs, uint32_t spin, uint32_t flags)
{
	typedef STDCALL int (*init_fn)(void *, uint32_t);

	(void)flags;
	return ((init_fn)find_shim("kernel32.dll", "InitializeCriticalSectionAndSpinCount"))(cs, spin);
}

/* ---- consoles: a terminal on the standard handle's descriptor ---- */

static int console_fd(void *h)
{
	int fd = win_handle_fd(h);

	if (fd < 0 || !isatty(fd)) {
		g_last_error = ERROR_INVALID_HANDLE;
		return -1;
	}
	return fd;
}

static STDCALL int s_GetConsoleMode(void *h, uint32_t *mode)
{
	if (console_fd(h) < 0)
		return 0;
	*mode = 0x7;	/* processed and wrapped output (VT sequences pass through a Linux terminal) */
	return 1;
}

static STDCALL int s_SetConsoleMode(void *h, uint32_t mode) { (void)mode; return console_fd(h) >= 0; }

struct screen_info {	/* CONSOLE_SCREEN_BUFFER_INFO: sizes and the window, in character cells */
	int16_t size_x, size_y, cursor_x, cursor_y;
	uint16_t attributes;
	int16_t left, top, right, bottom, max_x, max_y;
};

static STDCALL int s_GetConsoleScreenBufferInfo(void *h, struct screen_info *info)
{
	struct winsize ws;
	int fd = console_fd(h);

	if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws))
		return 0;
	*info = (struct screen_info){ .size_x = (int16_t)ws.ws_col, .size_y = (int16_t)ws.ws_row, .attributes = 7,
				      .right = (int16_t)(ws.ws_col - 1), .bottom = (int16_t)(ws.ws_row - 1),
				      .max_x = (int16_t)ws.ws_col, .max_y = (int16_t)ws.ws_row };
	return 1;
}

static STDCALL uint32_t s_GetConsoleOutputCP(void) { return CODE_PAGE; }

static STDCALL int s_WriteConsoleW(void *h, const uint16_t *buf, uint32_t n, uint32_t *written, void *reserved)
{
	typedef STDCALL int (*write_fn)(void *, const void *, uint32_t, uint32_t *, void *);
	char *narrow = malloc(n ? n : 1);
	int ok;

	(void)reserved;
	if (!narrow) {
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		narrow[i] = buf[i] < 256 ? (char)buf[i] : '?';
	ok = ((write_fn)find_shim("kernel32.dll", "WriteFile"))(h, narrow, n, written, NULL);
	free(narrow);
	return ok;
}

static STDCALL int s_WriteConsoleOutputA(void) { not_implemented("WriteConsoleOutputA"); }
static STDCALL int s_ReadConsoleW(void) { not_implemented("ReadConsoleW"); }

/* ---- the OS version: this loader answers as Windows 10.0 ---- */

#define VER_MINORVERSION 0x1
#define VER_MAJORVERSION 0x2
#define VER_SERVICEPACKMAJOR 0x20
#define VER_SERVICEPACKMINOR 0x10

static STDCALL uint64_t s_VerSetConditionMask(uint64_t mask, uint32_t type, uint8_t condition)
{
	for (int bit = 0; bit < 8; bit++)	/* VER_* type bit i keeps its condition in bits 3i..3i+2 */
		if (type & (1u << bit))
			mask |= (uint64_t)(condition & 7) << (3 * bit);
	return mask;
}

struct version_info {	/* OSVERSIONINFOEXA, the fields VerifyVersionInfoA compares */
	uint32_t size, major, minor, build, platform;
	char csd[128];
	uint16_t sp_major, sp_minor;
};

/* Only >= comparisons (VER_GREATER_EQUAL, 3) of major.minor.servicepack, as IsWindowsXOrGreater asks. */
static STDCALL int s_VerifyVersionInfoA(struct version_info *v, uint32_t type, uint64_t mask)
{
	const uint32_t ours[4] = { 10, 0, 0, 0 }, asked[4] = { v->major, v->minor, v->sp_major, v->sp_minor };
	const uint32_t bits[4] = { VER_MAJORVERSION, VER_MINORVERSION, VER_SERVICEPACKMAJOR, VER_SERVICEPACKMINOR };

	for (int i = 0; i < 4; i++) {
		if (!(type & bits[i]))
			continue;
		if (((mask >> (3 * __builtin_ctz(bits[i]))) & 7) != 3)
			not_implemented("VerifyVersionInfoA (a comparison other than VER_GREATER_EQUAL)");
	}
	if (type & ~(uint32_t)(VER_MAJORVERSION | VER_MINORVERSION | VER_SERVICEPACKMAJOR | VER_SERVICEPACKMINOR))
		not_implemented("VerifyVersionInfoA (fields other than the version and service pack)");
	for (int i = 0; i < 4; i++)
		if (type & bits[i] && ours[i] != asked[i]) {
			if (ours[i] > asked[i])
				return 1;
			g_last_error = ERROR_OLD_WIN_VERSION;
			return 0;
		}
	return 1;
}

const struct shim winrt_shims[] = {
	K("GetProcessHeap", s_GetProcessHeap), K("HeapAlloc", s_HeapAlloc), K("HeapFree", s_HeapFree),
	K("HeapReAlloc", s_HeapReAlloc), K("HeapSize", s_HeapSize), K("LocalFree", s_LocalFree),
	K("FlsAlloc", s_FlsAlloc), K("FlsGetValue", s_FlsGetValue), K("FlsSetValue", s_FlsSetValue),
	K("FlsFree", s_FlsFree), K("EncodePointer", s_EncodePointer), K("DecodePointer", s_EncodePointer),
	K("InitializeSListHead", s_InitializeSListHead), K("IsDebuggerPresent", s_IsDebuggerPresent),
	K("IsProcessorFeaturePresent", s_IsProcessorFeaturePresent), K("GetStartupInfoW", s_GetStartupInfoW),
	K("GetCommandLineW", s_GetCommandLineW), K("GetEnvironmentStringsW", s_GetEnvironmentStringsW),
	K("FreeEnvironmentStringsW", s_FreeEnvironmentStringsW), K("GetModuleFileNameW", s_GetModuleFileNameW),
	K("GetModuleHandleExW", s_GetModuleHandleExW), K("GetACP", s_GetACP), K("GetOEMCP", s_GetACP),
	K("IsValidCodePage", s_IsValidCodePage), K("GetCPInfo", s_GetCPInfo), K("GetStringTypeW", s_GetStringTypeW),
	K("LCMapStringEx", s_LCMapStringEx), K("LCMapStringW", s_LCMapStringW), K("CompareStringW", s_CompareStringW),
	K("GetLocaleInfoW", s_GetLocaleInfoW), K("IsValidLocale", s_IsValidLocale),
	K("GetUserDefaultLCID", s_GetUserDefaultLCID), K("EnumSystemLocalesW", s_EnumSystemLocalesW),
	K("AcquireSRWLockExclusive", s_AcquireSRWLockExclusive), K("ReleaseSRWLockExclusive", s_ReleaseSRWLockExclusive),
	K("WakeAllConditionVariable", s_WakeAllConditionVariable),
	K("SleepConditionVariableSRW", s_SleepConditionVariableSRW),
	K("InitializeCriticalSectionEx", s_InitializeCriticalSectionEx),
	K("GetConsoleMode", s_GetConsoleMode), K("SetConsoleMode", s_SetConsoleMode),
	K("GetConsoleScreenBufferInfo", s_GetConsoleScreenBufferInfo), K("GetConsoleOutputCP", s_GetConsoleOutputCP),
	K("WriteConsoleW", s_WriteConsoleW), K("WriteConsoleOutputA", s_WriteConsoleOutputA),
	K("ReadConsoleW", s_ReadConsoleW), K("VerSetConditionMask", s_VerSetConditionMask),
	K("VerifyVersionInfoA", s_VerifyVersionInfoA),
};

SHIM_TABLE_SIZE(winrt);
