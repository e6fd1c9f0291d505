// SPDX-License-Identifier: MIT
/*
 * What MSVC's own startup code (the vcruntime/vcstartup part linked into every MSVC program that
 * uses the UCRT DLLs, e.g. setuptools' cli-64.exe / cli-32.exe) calls beyond ucrt.c: onexit tables,
 * the thread_local destructor callback, the per-thread locale switch, the exception slots of
 * VCRUNTIME140, _set_fmode, and on i386 the floating-point control word (_controlfp_s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "shims.h"

/* ---- onexit tables: a DLL's own atexit list, which the program keeps and runs ---- */

/* The UCRT's _onexit_table_t is three pointers it keeps encoded, opaque to the program: ours fill them. */
struct onexit_table {
	void **fns;		/* functions registered */
	size_t used, cap;
};

static WINAPI int s__initialize_onexit_table(struct onexit_table *t)
{
	if (!t)
		return -1;
	if (!t->fns)	/* already initialized: left as it is (the UCRT's rule) */
		*t = (struct onexit_table){ NULL, 0, 0 };
	return 0;
}

static WINAPI int s__register_onexit_function(struct onexit_table *t, void *fn)
{
	if (!t || t->used > t->cap)
		return -1;
	if (t->used == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 32;
		void **grown = cap <= (1u << 20) ? realloc(t->fns, cap * sizeof(*grown)) : NULL;

		if (!grown)
			return -1;
		t->fns = grown;
		t->cap = cap;
	}
	t->fns[t->used++] = fn;
	return 0;
}

/* ---- the program's TLS destructor callback: run at exit as a TLS callback (DLL_PROCESS_DETACH) ---- */

typedef STDCALL void tls_callback_fn(void *image, uint32_t reason, void *reserved);
static tls_callback_fn *tls_exit_callback;

static void run_tls_exit_callback(void)
{
	tls_exit_callback(loaded_image(), 0, NULL);
}

static WINAPI void s__register_thread_local_exe_atexit_callback(tls_callback_fn *fn)
{
	if (tls_exit_callback)	/* the UCRT allows one: a second is a fatal error there too */
		die(3, "_register_thread_local_exe_atexit_callback was called twice");
	tls_exit_callback = fn;
	atexit(run_tls_exit_callback);	/* the exit shim ends in exit(): after the program's atexit functions */
}

static WINAPI char **s__get_initial_narrow_environment(void) { return environ; }

/* _c_exit: the quick C-runtime shutdown (no atexit functions, no flush); nothing here needs doing. */
static WINAPI void s__c_exit(void) { }

static WINAPI void s_terminate(void) { ((WINAPI void (*)(void))find_shim("msvcrt.dll", "abort"))(); }

/*
 * The filter of the startup's __except: the UCRT maps the exception to a signal() action. signal()
 * installs none here (peload.c), and for no action the UCRT answers EXCEPTION_CONTINUE_SEARCH.
 */
static WINAPI int s__seh_filter_exe(uint32_t code, void *pointers) { (void)code; (void)pointers; return 0; }

/* Per-thread locales exist only to differ from the global one; only the "C" locale exists here. */
enum { ENABLE_PER_THREAD_LOCALE = 1, DISABLE_PER_THREAD_LOCALE = 2 };
static __thread int thread_locale_mode = DISABLE_PER_THREAD_LOCALE;

static WINAPI int s__configthreadlocale(int mode)
{
	int old = thread_locale_mode;

	if (mode == -1)
		mode = DISABLE_PER_THREAD_LOCALE;	/* back to the process default */
	if (mode != 0 && mode != ENABLE_PER_THREAD_LOCALE && mode != DISABLE_PER_THREAD_LOCALE) {
		errno = EINVAL;
		return -1;
	}
	if (mode)
		thread_locale_mode = mode;
	return old;
}

/* VCRUNTIME140's per-thread slots for the exception being handled (C++ EH, the unhandled filter). */
static __thread void *current_exception, *current_exception_context;
static WINAPI void **s___current_exception(void) { return &current_exception; }
static WINAPI void **s___current_exception_context(void) { return &current_exception_context; }

static WINAPI int s__set_fmode(int mode)
{
	if (mode != 0x4000 && mode != 0x8000 && mode != 0x10000 && mode != 0x20000 && mode != 0x40000)
		return errno = EINVAL;	/* not _O_TEXT, _O_BINARY, _O_WTEXT, _O_U16TEXT or _O_U8TEXT */
	*((WINAPI int *(*)(void))find_shim("msvcrt.dll", "__p__fmode"))() = mode;
	return 0;
}

#ifdef __i386__
/*
 * _controlfp_s/_controlfp for the bits of the x87 control word and MXCSR that Windows programs set
 * (MSVC's i386 startup sets _PC_53): exception masks (_MCW_EM), rounding (_MCW_RC), x87 precision (_MCW_PC).
 * Other masks (_MCW_IC, _MCW_DN) are refused with EINVAL.
 */
enum { MCW_EM = 0x8001f, MCW_RC = 0x300, MCW_PC = 0x30000 };
static const struct { uint32_t win; uint16_t x87; uint32_t sse; } fp_bits[] = {
	{ 0x10, 0x01, 0x0080 }, { 0x80000, 0x02, 0x0100 }, { 0x08, 0x04, 0x0200 },	/* invalid, denormal, /0 */
	{ 0x04, 0x08, 0x0400 }, { 0x02, 0x10, 0x0800 }, { 0x01, 0x20, 0x1000 },	/* overflow, underflow, inexact */
	{ 0x100, 0x400, 0x2000 }, { 0x200, 0x800, 0x4000 },			/* rounding bits */
};
static const struct { uint32_t win; uint16_t x87; } precisions[] = {	/* x87 PC field, bits 8-9 */
	{ 0x00000, 0x300 }, { 0x10000, 0x200 }, { 0x20000, 0x000 },	/* _PC_64, _PC_53, _PC_24 */
};

static uint32_t fp_control(void)
{
	uint16_t cw;
	uint32_t win = 0;

	__asm__ volatile("fnstcw %0" : "=m"(cw));
	for (size_t i = 0; i < sizeof(fp_bits) / sizeof(fp_bits[0]); i++)
		if (cw & fp_bits[i].x87)
			win |= fp_bits[i].win;
	for (size_t i = 0; i < sizeof(precisions) / sizeof(precisions[0]); i++)
		if ((cw & 0x300) == precisions[i].x87)
			win |= precisions[i].win;	/* PC 01 is reserved: reads as _PC_24, as msvcrt's */
	return win;
}

/* Sets the bits of mask (known ones only) to value's; returns the control word after. */
static uint32_t set_fp_control(uint32_t value, uint32_t mask)
{
	uint32_t want = (fp_control() & ~mask) | (value & mask), mxcsr;
	uint16_t cw;

	__asm__ volatile("fnstcw %0" : "=m"(cw));
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	for (size_t i = 0; i < sizeof(fp_bits) / sizeof(fp_bits[0]); i++) {
		cw = want & fp_bits[i].win ? cw | fp_bits[i].x87 : cw & ~fp_bits[i].x87;
		mxcsr = want & fp_bits[i].win ? mxcsr | fp_bits[i].sse : mxcsr & ~fp_bits[i].sse;
	}
	for (size_t i = 0; i < sizeof(precisions) / sizeof(precisions[0]); i++)
		if ((want & MCW_PC) == precisions[i].win)
			cw = (uint16_t)((cw & ~0x300) | precisions[i].x87);
	__asm__ volatile("fldcw %0" : : "m"(cw));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	return fp_control();
}

static WINAPI int s__controlfp_s(uint32_t *current, uint32_t value, uint32_t mask)
{
	if ((mask & ~(MCW_EM | MCW_RC | MCW_PC)) || (value & mask & MCW_PC) == MCW_PC) {
		if (current)
			*current = fp_control();
		return errno = EINVAL;
	}
	uint32_t now = set_fp_control(value, mask);

	if (current)
		*current = now;
	return 0;
}

/* msvcrt's _controlfp (MinGW's _controlfp_s calls it): bits it does not know are left alone. */
static WINAPI uint32_t s__controlfp(uint32_t value, uint32_t mask)
{
	mask &= MCW_EM | MCW_RC | ((value & MCW_PC) == MCW_PC ? 0 : MCW_PC);
	return set_fp_control(value, mask);
}

/* i386 SEH (the fs:[0] chain) is not dispatched here, so this handler of its frames is never reached. */
static WINAPI int s__except_handler4_common(void)
{
	die(126, "a Windows structured exception was raised; SEH is not supported");
}
#endif

const struct shim ucrt_startup_shims[] = {
	M("_initialize_onexit_table", s__initialize_onexit_table),
	M("_register_onexit_function", s__register_onexit_function),
	M("_register_thread_local_exe_atexit_callback", s__register_thread_local_exe_atexit_callback),
	M("_get_initial_narrow_environment", s__get_initial_narrow_environment), M("_c_exit", s__c_exit),
	M("terminate", s_terminate), M("_seh_filter_exe", s__seh_filter_exe),
	M("_configthreadlocale", s__configthreadlocale), M("__current_exception", s___current_exception),
	M("__current_exception_context", s___current_exception_context), M("_set_fmode", s__set_fmode),
#ifdef __i386__
	M("_controlfp_s", s__controlfp_s), M("_controlfp", s__controlfp),
	M("_except_handler4_common", s__except_handler4_common),
#endif
};

SHIM_TABLE_SIZE(ucrt_startup);
