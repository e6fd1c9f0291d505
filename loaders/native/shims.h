/* SPDX-License-Identifier: MIT */
/* What peload.c and the shim files (crt.c) share: the calling convention, the shim tables, helpers. */
#ifndef CEREBRO_SHIMS_H
#define CEREBRO_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The two Windows calling conventions a shim is written in, one source for both builds:
 * WINAPI for msvcrt/UCRT functions (and the callbacks they take: qsort comparators, atexit
 * functions), STDCALL for KERNEL32 and the other Win32 API DLLs (and their callbacks: thread
 * start routines, TLS callbacks). On x86-64 both are the Windows x64 convention. On i386 WINAPI
 * is cdecl (the caller pops the arguments) and STDCALL is stdcall (the callee pops them): a shim
 * in the wrong one unbalances the program's stack. Windows code keeps only 4-byte stack
 * alignment on i386, so every shim realigns (glibc may use SSE on its stack).
 * A win_slot is one argument slot of a Windows va_list: 8 bytes on x64; 4 on i386, where 64-bit
 * integers and doubles take two.
 */
#ifdef __x86_64__
#define WINAPI __attribute__((ms_abi))
#define STDCALL __attribute__((ms_abi))
typedef uint64_t win_slot;
#define MS_VA_LIST __builtin_ms_va_list
#define MS_VA_START __builtin_ms_va_start
#define MS_VA_END __builtin_ms_va_end
#else
#define WINAPI __attribute__((cdecl, force_align_arg_pointer))
#define STDCALL __attribute__((stdcall, force_align_arg_pointer))
typedef uint32_t win_slot;
#define MS_VA_LIST __builtin_va_list
#define MS_VA_START __builtin_va_start
#define MS_VA_END __builtin_va_end
#endif

/* Calls call(ap) with ap the argument slots of the Windows variadic arguments after last. */
#define MS_VARARGS(last, call) ({					\
	MS_VA_LIST ap_;							\
	MS_VA_START(ap_, last);						\
	int r_ = call((const win_slot *)ap_);				\
	MS_VA_END(ap_);							\
	r_; })

struct shim {
	const char *dll, *name;
	void *addr;
};

/* One shim: a KERNEL32 function (K) or an msvcrt one (M, also the UCRT's names), fn its shim or data. */
#define K(name, fn) { "kernel32.dll", name, (void *)(fn) }
#define M(name, fn) { "msvcrt.dll", name, (void *)(fn) }

/* The shim table a file exports: <name>_shims[] and its length, found by peload.c's find_shim. */
#define SHIM_TABLE(name) extern const struct shim name##_shims[]; extern const size_t name##_shim_count
/* Defines <name>_shim_count after the table <name>_shims[]. */
#define SHIM_TABLE_SIZE(name) const size_t name##_shim_count = sizeof(name##_shims) / sizeof(name##_shims[0])

/* crt.c: the C runtime's ctype, time, scanf, string, setjmp and file functions. */
SHIM_TABLE(crt);

/* threads.c: threads, semaphores, critical sections and waits (KERNEL32, msvcrt _beginthreadex). */
SHIM_TABLE(thread);

/* wide.c: 16-bit wchar_t string functions, wide classification. */
SHIM_TABLE(wide);

/* modules.c: GetModuleHandle, LoadLibrary, GetProcAddress over the shim tables. */
SHIM_TABLE(module);

/* crt_stdio.c: freopen, setvbuf, tmpfile/tmpnam, remove/rename, _sopen, _utime64, system/_popen, setlocale. */
SHIM_TABLE(crt_stdio);

/* crt_math.c: msvcrt's double <math.h> functions. */
SHIM_TABLE(crt_math);

/* paths.c: Windows file names ('\\' or '/' between parts) to Linux ones and back. */
const char *host_path(const char *path, char buf[4096]);	/* path, or buf with '\\' as '/'; NULL if too long */
size_t windows_path(const char *path, char *buf, size_t size);	/* absolute, '\\'-separated; its length */

/* files.c: the msvcrt-shaped FILE a program gets for a file it opened (MinGW locks inside it). */
void *guest_file(FILE *host);			/* NULL for NULL */
FILE *guest_file_host(void *f);			/* its host FILE; one-line error for any other pointer */
FILE *guest_file_release(void *f);		/* frees it (fclose, _pclose), returns its host FILE */

/* ucrt.c: the Universal CRT's startup, __stdio_common_* printf, __acrt_iob_func, time-zone variables. */
SHIM_TABLE(ucrt);

/* ucrt_startup.c: onexit tables, _initterm_e's neighbours, exception slots, _controlfp_s (i386): MSVC startup. */
SHIM_TABLE(ucrt_startup);

/* splitpath.c: _splitpath and _makepath. */
SHIM_TABLE(splitpath);

/* multibyte.c: mbrtowc/wcrtomb in the "C" locale. */
SHIM_TABLE(multibyte);

/* messages.c: FormatMessageA for system error codes. */
SHIM_TABLE(message);

/* crt32.c (the i386 build only): msvcrt's _stat/_fstat/_utime with a 32-bit time_t. */
SHIM_TABLE(crt32);

struct win_stat64 {	/* msvcrt's struct _stat64 (56 bytes): crt.c fills it, crt32.c narrows it */
	uint32_t dev;
	uint16_t ino, mode;
	int16_t nlink, uid, gid, pad;
	uint32_t rdev, pad2;
	int64_t size, atime, mtime, ctime;
};

/* winrt.c: the process heap, FLS, wide startup data, code pages, SRW locks, consoles (MSVC's CRT). */
SHIM_TABLE(winrt);

/* winfile.c: KERNEL32 file handles and the file system; the one table of the handles below. */
SHIM_TABLE(winfile);
enum object_kind { OBJ_FREE, OBJ_ANY, OBJ_FILE, OBJ_FIND, OBJ_PIPE, OBJ_PROCESS, OBJ_PORT, OBJ_JOB };
struct win_object {
	enum object_kind kind;
	int fd;				/* a host descriptor (file, pipe end), or -1 */
	struct __dirstream *dir;	/* OBJ_FIND: the listing */
	void *data;			/* freed on close: process.c's state */
};
void *handle_new(struct win_object o);		/* NULL with GetLastError set */
struct win_object *handle_object(void *h, enum object_kind kind);	/* NULL: not one (ERROR_INVALID_HANDLE) */
void *handle_find(enum object_kind kind, int (*match)(const struct win_object *, const void *), const void *arg);
enum object_kind handle_kind(void *h);		/* OBJ_FREE when h is none of these; GetLastError kept */
int win_handle_fd(void *h);			/* a console or file/pipe handle's descriptor, or -1 */
int win_handle_close(void *h);			/* CloseHandle of one of these; 0 if not one */
int fail_with_errno(void);			/* GetLastError() from errno; returns 0 (FALSE) */

/* process.c: CreateProcessA over posix_spawn of /bin/sh -c, pipes, I/O completion ports. */
SHIM_TABLE(process);
void *pipe_client(const char *name, uint32_t access);	/* CreateFile of \\.\pipe\name */
uint32_t process_wait(void *h, uint32_t ms);	/* WaitForSingleObject of a process handle */
int read_overlapped(void *h, void *buf, uint32_t size, uint32_t *got, void *overlapped);	/* ReadFile's */
/* Starts program (searched in PATH when it has no '/') with argv and STARTUPINFO's standard handles. */
int spawn_child(const char *program, char *const argv[], uint32_t flags, void *startup, void *information);

/* launcher.c: CreateProcessW (a program and its arguments), job objects, SHLWAPI paths (script launchers). */
SHIM_TABLE(launcher);
int job_query(void *job, uint32_t cls, void *info, uint32_t size, uint32_t *ret);	/* QueryInformationJobObject */
int names_windows_program(const char *line);	/* its program is a '\\'-rooted path of an existing file */
/* CreateProcessW's work: line (changed in place) split by the C runtime's rules, '\\' paths mapped, run. */
int spawn_command_line(char *line, uint32_t flags, void *startup, void *information);

int ctype_bits(int c, int mask);		/* crt.c: msvcrt's _pctype[c] & mask, 0 outside -1..255 */

/* peload.c */
void *find_shim(const char *dll, const char *name);	/* NULL when there is none */
const char *shim_dll(const char *dll);		/* the DLL whose shims serve dll (UCRT names: msvcrt.dll) */
void *loaded_image(void);			/* the program's image base */
__attribute__((noreturn, format(printf, 2, 3)))
void die(int status, const char *fmt, ...);
FILE *host_file(void *f);			/* msvcrt FILE* (its _iob or one fopen returned) -> host FILE* */
extern __thread uint32_t g_last_error;		/* GetLastError(): per thread */
void *thread_attach(size_t stack_size);		/* a new thread's TEB (gs/fs), TLS block, DLL_THREAD_ATTACH */
void thread_detach(void *teb);			/* DLL_THREAD_DETACH callbacks; frees what attach made */

#endif
