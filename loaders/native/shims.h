/* SPDX-License-Identifier: MIT */
/* What peload.c and the shim files (crt.c) share: the calling convention, the shim tables, helpers. */
#ifndef CEREBRO_SHIMS_H
#define CEREBRO_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WINAPI __attribute__((ms_abi))

/* Calls call(ap) with ap the 8-byte argument slots of the Windows variadic arguments after last. */
#define MS_VARARGS(last, call) ({					\
	__builtin_ms_va_list ap_;					\
	__builtin_ms_va_start(ap_, last);				\
	int r_ = call((const uint64_t *)ap_);				\
	__builtin_ms_va_end(ap_);					\
	r_; })

struct shim {
	const char *dll, *name;
	void *addr;
};

/* crt.c: the C runtime's ctype, time, scanf, string, setjmp and file functions. */
extern const struct shim crt_shims[];
extern const size_t crt_shim_count;

/* threads.c: threads, semaphores, critical sections and waits (KERNEL32, msvcrt _beginthreadex). */
extern const struct shim thread_shims[];
extern const size_t thread_shim_count;

/* wide.c: 16-bit wchar_t string functions, wide classification. */
extern const struct shim wide_shims[];
extern const size_t wide_shim_count;

/* modules.c: GetModuleHandle, LoadLibrary, GetProcAddress over the shim tables. */
extern const struct shim module_shims[];
extern const size_t module_shim_count;

int ctype_bits(int c, int mask);		/* crt.c: msvcrt's _pctype[c] & mask, 0 outside -1..255 */

/* peload.c */
void *find_shim(const char *dll, const char *name);	/* NULL when there is none */
const char *shim_dll(const char *dll);		/* the DLL whose shims serve dll (UCRT names: msvcrt.dll) */
void *loaded_image(void);			/* the program's image base */
__attribute__((noreturn, format(printf, 2, 3)))
void die(int status, const char *fmt, ...);
FILE *host_file(void *f);			/* msvcrt FILE* (its _iob or one fopen returned) -> host FILE* */
extern __thread uint32_t g_last_error;		/* GetLastError(): per thread */
void *thread_attach(size_t stack_size);		/* a new thread's TEB (gs), TLS block, DLL_THREAD_ATTACH */
void thread_detach(void *teb);			/* DLL_THREAD_DETACH callbacks; frees what attach made */

#endif
