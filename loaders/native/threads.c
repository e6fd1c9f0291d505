// SPDX-License-Identifier: MIT
/*
 * Real threads for PE programs: CreateThread/_beginthreadex run the guest's start routine on a
 * pthread with its own TEB (gs on x64, fs on i386), TLS block and DLL_THREAD_ATTACH/DETACH callbacks; semaphores
 * (libgcc's mutexes and emutls are built on them) and thread handles are waitable objects;
 * critical sections are recursive mutexes.
 *
 * Every waitable object lives in one table under one lock and one condition variable: a post
 * or a thread's end wakes all waiters, who re-check their own object. Handles are
 * HANDLE_BASE + index, never pointers the guest could forge into host memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault_report.h"
#include "shims.h"

enum kind { FREE, SEMAPHORE, THREAD };

struct object {
	enum kind kind;
	int refs;		/* open handles, plus one while a thread runs */
	int32_t count, max;	/* semaphore */
	int done;		/* thread: finished (signaled) */
	uint32_t exit_code;
	void *start, *arg;	/* thread: the guest's routine */
	size_t stack_size;
};

#define MAX_OBJECTS 1024
#define HANDLE_BASE 0x5e000	/* not a pointer, not a console handle (0x100-0x102) */
#define STILL_ACTIVE 259

static struct object objects[MAX_OBJECTS];
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t objects_changed = PTHREAD_COND_INITIALIZER;

enum { ERROR_INVALID_HANDLE = 6, ERROR_NOT_ENOUGH_MEMORY = 8, ERROR_INVALID_PARAMETER = 87,
       ERROR_TOO_MANY_POSTS = 298 };

/* The object a handle names (objects_lock held), or NULL with ERROR_INVALID_HANDLE. */
static struct object *object_of(void *h)
{
	uintptr_t i = (uintptr_t)h - HANDLE_BASE;

	if ((uintptr_t)h < HANDLE_BASE || i >= MAX_OBJECTS || objects[i].kind == FREE || !objects[i].refs) {
		g_last_error = ERROR_INVALID_HANDLE;
		return NULL;
	}
	return &objects[i];
}

/* A free slot (objects_lock held), or NULL with ERROR_NOT_ENOUGH_MEMORY. */
static struct object *new_object(enum kind kind, int refs)
{
	for (size_t i = 0; i < MAX_OBJECTS; i++)
		if (objects[i].kind == FREE) {
			objects[i] = (struct object){ .kind = kind, .refs = refs };
			return &objects[i];
		}
	g_last_error = ERROR_NOT_ENOUGH_MEMORY;
	return NULL;
}

static void *handle_of(const struct object *o) { return (void *)(uintptr_t)(HANDLE_BASE + (o - objects)); }

static void put_object(struct object *o)
{
	if (!--o->refs)
		o->kind = FREE;
}

/* ---- semaphores ---- */

static STDCALL void *s_CreateSemaphore(void *attrs, int32_t initial, int32_t max, const void *name)
{
	struct object *o;

	(void)attrs;
	if (name || max <= 0 || initial < 0 || initial > max) {	/* named ones are cross-process */
		g_last_error = ERROR_INVALID_PARAMETER;
		return NULL;
	}
	pthread_mutex_lock(&objects_lock);
	o = new_object(SEMAPHORE, 1);
	if (o) {
		o->count = initial;
		o->max = max;
	}
	pthread_mutex_unlock(&objects_lock);
	return o ? handle_of(o) : NULL;
}

static STDCALL int s_ReleaseSemaphore(void *h, int32_t n, int32_t *previous)
{
	struct object *o;
	int ok = 0;

	pthread_mutex_lock(&objects_lock);
	o = object_of(h);
	if (o && o->kind == SEMAPHORE) {
		ok = n > 0 && n <= o->max - o->count;
		if (previous)
			*previous = o->count;
		if (ok) {
			o->count += n;
			pthread_cond_broadcast(&objects_changed);
		} else {
			g_last_error = n > 0 ? ERROR_TOO_MANY_POSTS : ERROR_INVALID_PARAMETER;
		}
	} else if (o) {
		g_last_error = ERROR_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&objects_lock);
	return ok;
}

/* ---- waits ---- */

#define INFINITE 0xffffffffu
#define WAIT_OBJECT_0 0u
#define WAIT_TIMEOUT 0x102u
#define WAIT_FAILED 0xffffffffu

static int signaled(const struct object *o) { return o->kind == SEMAPHORE ? o->count > 0 : o->done; }

static void consume(struct object *o)
{
	if (o->kind == SEMAPHORE)
		o->count--;
}

/*
 * Waits (objects_lock held) until ready() says which object is signaled (>= 0) or the time is up;
 * returns that index, or -1 on timeout.
 */
static int wait_until(int (*ready)(struct object **, uint32_t, int), struct object **list, uint32_t n, int all,
		      uint32_t ms)
{
	struct timespec deadline;
	int got;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (long)(ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	while ((got = ready(list, n, all)) < 0) {
		if (ms == INFINITE)
			pthread_cond_wait(&objects_changed, &objects_lock);
		else if (pthread_cond_timedwait(&objects_changed, &objects_lock, &deadline) == ETIMEDOUT)
			return ready(list, n, all);
	}
	return got;
}

/* all: every object signaled (consumes each; returns 0); else the first signaled one (consumed). */
static int ready_objects(struct object **list, uint32_t n, int all)
{
	for (uint32_t i = 0; i < n; i++) {
		if (all && !signaled(list[i]))
			return -1;
		if (!all && signaled(list[i])) {
			consume(list[i]);
			return (int)i;
		}
	}
	if (!all)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		consume(list[i]);
	return 0;
}

#define MAXIMUM_WAIT_OBJECTS 64

static STDCALL uint32_t s_WaitForMultipleObjects(uint32_t n, void *const *handles, int all, uint32_t ms)
{
	struct object *list[MAXIMUM_WAIT_OBJECTS];
	int got;

	if (!n || n > MAXIMUM_WAIT_OBJECTS) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return WAIT_FAILED;
	}
	pthread_mutex_lock(&objects_lock);
	for (uint32_t i = 0; i < n; i++)
		if (!(list[i] = object_of(handles[i]))) {
			pthread_mutex_unlock(&objects_lock);
			return WAIT_FAILED;
		}
	for (uint32_t i = 0; i < n; i++)
		list[i]->refs++;	/* a CloseHandle during the wait must not free what is waited on */
	got = wait_until(ready_objects, list, n, all, ms);
	for (uint32_t i = 0; i < n; i++)
		put_object(list[i]);
	pthread_mutex_unlock(&objects_lock);
	return got < 0 ? WAIT_TIMEOUT : WAIT_OBJECT_0 + (uint32_t)got;
}

static STDCALL uint32_t s_WaitForSingleObject(void *h, uint32_t ms)
{
	if (handle_kind(h) == OBJ_PROCESS)	/* winfile.c's table: a child process (process.c) */
		return process_wait(h, ms);
	return s_WaitForMultipleObjects(1, &h, 1, ms);
}

static STDCALL int s_CloseHandle(void *h)
{
	struct object *o;

	if (handle_kind(h) != OBJ_FREE)	/* a file, pipe, listing, process or port (winfile.c) */
		return win_handle_close(h);
	pthread_mutex_lock(&objects_lock);
	o = object_of(h);
	if (o)
		put_object(o);
	pthread_mutex_unlock(&objects_lock);
	return o != NULL;
}

/* ---- threads ---- */

typedef STDCALL uint32_t (*win_thread_fn)(void *);

static __thread sigjmp_buf *thread_exit_jump;	/* where ExitThread leaves the guest's frames */
static __thread uint32_t thread_exit_code;

static void finish(struct object *o, uint32_t code)
{
	pthread_mutex_lock(&objects_lock);
	o->exit_code = code;
	o->done = 1;
	put_object(o);
	pthread_cond_broadcast(&objects_changed);
	pthread_mutex_unlock(&objects_lock);
}

static void *thread_main(void *p)
{
	struct object *o = p;
	sigjmp_buf exit_jump;
	uint32_t code;
	void *teb, *alt_stack;

	alt_stack = fault_report_thread();
	teb = thread_attach(o->stack_size);
	thread_exit_jump = &exit_jump;
	if (!sigsetjmp(exit_jump, 0))
		code = ((win_thread_fn)o->start)(o->arg);
	else
		code = thread_exit_code;
	thread_detach(teb);
	fault_report_thread_end(alt_stack);
	finish(o, code);
	return NULL;
}

#define MAX_STACK (256u << 20)
#define DEFAULT_STACK (8u << 20)	/* Linux's default; Windows' is 1 MiB, which programs may exceed */
#define CREATE_SUSPENDED 0x4

static void *create_thread(size_t stack, void *start, void *arg, uint32_t flags, uint32_t *id)
{
	pthread_attr_t attr;
	pthread_t thread;
	struct object *o;

	if (flags & CREATE_SUSPENDED || !start) {	/* ResumeThread is not there: refuse rather than hang */
		g_last_error = ERROR_INVALID_PARAMETER;
		return NULL;
	}
	pthread_mutex_lock(&objects_lock);
	o = new_object(THREAD, 2);	/* the handle, and the running thread */
	pthread_mutex_unlock(&objects_lock);
	if (!o)
		return NULL;
	o->start = start;
	o->arg = arg;
	o->stack_size = stack && stack <= MAX_STACK ? (stack < (64u << 10) ? 64u << 10 : stack) : DEFAULT_STACK;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, o->stack_size + (64u << 10));	/* the loader's own frames too */
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, thread_main, o)) {
		pthread_attr_destroy(&attr);
		pthread_mutex_lock(&objects_lock);
		o->kind = FREE;
		pthread_mutex_unlock(&objects_lock);
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return NULL;
	}
	pthread_attr_destroy(&attr);
	if (id)
		*id = (uint32_t)(HANDLE_BASE + (o - objects));
	return handle_of(o);
}

static STDCALL void *s_CreateThread(void *attrs, size_t stack, void *start, void *arg, uint32_t flags, uint32_t *id)
{
	(void)attrs;
	return create_thread(stack, start, arg, flags, id);
}

static WINAPI uintptr_t s__beginthreadex(void *security, uint32_t stack, void *start, void *arg, uint32_t flags,
					  uint32_t *id)
{
	(void)security;
	return (uintptr_t)create_thread(stack, start, arg, flags, id);
}

/* Leaves the guest's frames for thread_main (no unwinding: no SEH); the main thread exits the process. */
static STDCALL void s_ExitThread(uint32_t code)
{
	if (!thread_exit_jump) {
		fflush(NULL);
		exit((int)code);
	}
	thread_exit_code = code;
	siglongjmp(*thread_exit_jump, 1);
}

static STDCALL int s_GetExitCodeThread(void *h, uint32_t *code)
{
	struct object *o;

	pthread_mutex_lock(&objects_lock);
	o = object_of(h);
	if (o && o->kind != THREAD) {
		g_last_error = ERROR_INVALID_HANDLE;
		o = NULL;
	}
	if (o && code)
		*code = o->done ? o->exit_code : STILL_ACTIVE;
	pthread_mutex_unlock(&objects_lock);
	return o != NULL;
}

/* ---- critical sections: a recursive mutex, its pointer kept in the guest's CRITICAL_SECTION ---- */

static pthread_mutex_t *section_mutex(void *cs)
{
	pthread_mutex_t *m;

	memcpy(&m, cs, sizeof(m));	/* DebugInfo, the first field: ours to use */
	if (!m)
		die(126, "a critical section was used before InitializeCriticalSection");
	return m;
}

static STDCALL void s_InitializeCriticalSection(void *cs)
{
	pthread_mutexattr_t attr;
	pthread_mutex_t *m = malloc(sizeof(*m));

	if (!m)
		die(126, "out of memory");
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
	memset(cs, 0, 40);	/* sizeof(CRITICAL_SECTION) on x64 */
	memcpy(cs, &m, sizeof(m));
}

static STDCALL int s_InitializeCriticalSectionAndSpinCount(void *cs, uint32_t spin)
{
	(void)spin;
	s_InitializeCriticalSection(cs);
	return 1;
}

static STDCALL void s_EnterCriticalSection(void *cs) { pthread_mutex_lock(section_mutex(cs)); }
static STDCALL void s_LeaveCriticalSection(void *cs) { pthread_mutex_unlock(section_mutex(cs)); }
static STDCALL int s_TryEnterCriticalSection(void *cs) { return !pthread_mutex_trylock(section_mutex(cs)); }

static STDCALL void s_DeleteCriticalSection(void *cs)
{
	pthread_mutex_t *m = section_mutex(cs);

	pthread_mutex_destroy(m);
	free(m);
	memset(cs, 0, sizeof(m));
}

const struct shim thread_shims[] = {
	K("CreateSemaphoreA", s_CreateSemaphore), K("CreateSemaphoreW", s_CreateSemaphore),
	K("ReleaseSemaphore", s_ReleaseSemaphore), K("WaitForSingleObject", s_WaitForSingleObject),
	K("WaitForMultipleObjects", s_WaitForMultipleObjects), K("CloseHandle", s_CloseHandle),
	K("CreateThread", s_CreateThread), K("ExitThread", s_ExitThread), K("GetExitCodeThread", s_GetExitCodeThread),
	M("_beginthreadex", s__beginthreadex), M("_endthreadex", s_ExitThread),
	K("InitializeCriticalSection", s_InitializeCriticalSection),
	K("InitializeCriticalSectionAndSpinCount", s_InitializeCriticalSectionAndSpinCount),
	K("EnterCriticalSection", s_EnterCriticalSection), K("LeaveCriticalSection", s_LeaveCriticalSection),
	K("TryEnterCriticalSection", s_TryEnterCriticalSection), K("DeleteCriticalSection", s_DeleteCriticalSection),
};

SHIM_TABLE_SIZE(thread);
