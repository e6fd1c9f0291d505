// SPDX-License-Identifier: MIT
/*
 * The worker pool behind multi-threaded calls. A job is published by bumping
 * a generation counter; each worker spins on it for about SPIN_NS (so calls
 * that follow each other closely never sleep), then waits on a condition
 * variable. The caller runs part 0, spins as long for the workers to finish,
 * then sleeps on a futex that the worker finishing last wakes: a descheduled
 * worker costs the call its own delay, not the caller's CPU time as well.
 * Meetings inside a job wait the same way.
 */
#define _GNU_SOURCE
#include "pool.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "clock.h"

#define SPIN_NS 50000u
#define SPINS_PER_CLOCK 64u	/* pauses between clock reads */

struct cbx_worker {
	struct cbx_pool *pool;
	pthread_t thread;
	unsigned int part;
};

struct cbx_pool {
	unsigned int threads;
	unsigned int started;		/* workers running */
	pid_t owner;			/* a forked child has no workers */
	struct cbx_worker *workers;	/* threads - 1 */
	int *status;			/* per part, of the current job */
	pthread_mutex_t busy;		/* held while a job runs */
	pthread_mutex_t lock;		/* pairs with wake */
	pthread_cond_t wake;
	cbx_pool_fn fn;			/* the current job, published by generation */
	void *arg;
	atomic_uint generation;
	atomic_uint remaining;		/* workers still running the job (a futex word) */
	atomic_uint caller_asleep;	/* the caller sleeps on remaining: the last worker wakes it */
	atomic_bool stop;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Sleeps while *@word == @value (or until woken). */
static void futex_wait(atomic_uint *word, unsigned int value)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *word, int count)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* Waits until the generation moves past @seen (or stop); returns it. */
static unsigned int wait_for_job(struct cbx_pool *pool, unsigned int seen)
{
	uint64_t deadline = cbx_now_ns() + SPIN_NS;
	unsigned int gen, spins = 0;

	for (;;) {
		gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
		if (gen != seen || atomic_load_explicit(&pool->stop, memory_order_acquire))
			return gen;
		cpu_relax();
		if (++spins % SPINS_PER_CLOCK == 0 && cbx_now_ns() > deadline)
			break;
	}
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
		if (gen != seen || atomic_load_explicit(&pool->stop, memory_order_acquire))
			break;
		pthread_cond_wait(&pool->wake, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return gen;
}

static void *worker_main(void *data)
{
	struct cbx_worker *w = data;
	struct cbx_pool *pool = w->pool;
	unsigned int seen = 0;

	for (;;) {
		seen = wait_for_job(pool, seen);
		if (atomic_load_explicit(&pool->stop, memory_order_acquire))
			return NULL;
		pool->status[w->part] = pool->fn(pool->arg, w->part, pool->threads);
		/* seq_cst both: either this sees caller_asleep or the caller sees the count drop */
		if (atomic_fetch_sub(&pool->remaining, 1) == 1 && atomic_load(&pool->caller_asleep))
			futex_wake(&pool->remaining, 1);
	}
}

static void stop_workers(struct cbx_pool *pool)
{
	unsigned int i;

	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&pool->stop, true, memory_order_release);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->started; i++)
		pthread_join(pool->workers[i].thread, NULL);
	pool->started = 0;
}

/* Workers take no signals: the process's handlers run on its own threads. */
static int start_workers(struct cbx_pool *pool)
{
	sigset_t all, old;
	unsigned int i;
	int ret = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i + 1 < pool->threads; i++) {
		pool->workers[i].pool = pool;
		pool->workers[i].part = i + 1;
		ret = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
		if (ret)
			break;
		pool->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int cbx_pool_create(struct cbx_pool **out, unsigned int threads, struct cbx_error *err)
{
	struct cbx_pool *pool;
	int ret;

	*out = NULL;
	if (threads == 0)
		return cbx_fail(err, CBX_ERUN, "a thread pool needs at least 1 thread");
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return cbx_fail(err, CBX_ENOMEM, "out of memory creating a thread pool");
	pool->threads = threads;
	pool->owner = getpid();
	pool->workers = calloc(threads, sizeof(*pool->workers));
	pool->status = calloc(threads, sizeof(*pool->status));
	if (!pool->workers || !pool->status) {
		free(pool->workers);
		free(pool->status);
		free(pool);
		return cbx_fail(err, CBX_ENOMEM, "out of memory creating a thread pool");
	}
	pthread_mutex_init(&pool->busy, NULL);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	atomic_init(&pool->generation, 0);
	atomic_init(&pool->remaining, 0);
	atomic_init(&pool->caller_asleep, 0);
	atomic_init(&pool->stop, false);
	ret = start_workers(pool);
	if (ret) {
		unsigned int started = pool->started;

		cbx_pool_destroy(pool);
		return cbx_fail(err, CBX_ENOMEM, "cannot start worker thread %u of %u: %s",
				started + 1, threads - 1, strerror(ret));
	}
	*out = pool;
	return CBX_OK;
}

void cbx_pool_destroy(struct cbx_pool *pool)
{
	if (!pool)
		return;
	/* A forked child has no workers, and the parent's waiters live on in the condvar: just free. */
	if (getpid() == pool->owner) {
		stop_workers(pool);
		pthread_cond_destroy(&pool->wake);
		pthread_mutex_destroy(&pool->lock);
		pthread_mutex_destroy(&pool->busy);
	}
	free(pool->workers);
	free(pool->status);
	free(pool);
}

unsigned int cbx_pool_threads(const struct cbx_pool *pool)
{
	return pool->threads;
}

/* Spins about SPIN_NS for the workers to finish, then sleeps until the last one wakes it. */
static void wait_for_workers(struct cbx_pool *pool)
{
	uint64_t deadline = cbx_now_ns() + SPIN_NS;
	unsigned int left, spins = 0;

	while (atomic_load_explicit(&pool->remaining, memory_order_acquire) != 0) {
		cpu_relax();
		if (++spins % SPINS_PER_CLOCK == 0 && cbx_now_ns() > deadline)
			break;
	}
	atomic_store(&pool->caller_asleep, 1);
	while ((left = atomic_load(&pool->remaining)) != 0)
		futex_wait(&pool->remaining, left);
	atomic_store_explicit(&pool->caller_asleep, 0, memory_order_relaxed);
}

static bool meeting_over(struct cbx_meeting *meeting, unsigned int round)
{
	return atomic_load(&meeting->round) != round || atomic_load(&meeting->abandoned);
}

bool cbx_meeting_wait(struct cbx_meeting *meeting, unsigned int parts)
{
	unsigned int round = atomic_load(&meeting->round), spins = 0;
	uint64_t deadline;

	if (atomic_load(&meeting->abandoned))
		return false;
	if (atomic_fetch_add(&meeting->arrived, 1) == parts - 1) {
		/* the last to arrive: parts leaving see arrived reset before the new round */
		atomic_store_explicit(&meeting->arrived, 0, memory_order_relaxed);
		atomic_fetch_add(&meeting->round, 1);
		/* seq_cst both: either this sees a sleeper or the sleeper sees the new round */
		if (atomic_load(&meeting->sleepers))
			futex_wake(&meeting->round, INT_MAX);
		return true;
	}
	deadline = cbx_now_ns() + SPIN_NS;
	while (!meeting_over(meeting, round)) {
		cpu_relax();
		if (++spins % SPINS_PER_CLOCK == 0 && cbx_now_ns() > deadline)
			break;
	}
	atomic_fetch_add(&meeting->sleepers, 1);
	while (!meeting_over(meeting, round))
		futex_wait(&meeting->round, round);
	atomic_fetch_sub(&meeting->sleepers, 1);
	return !atomic_load(&meeting->abandoned);
}

void cbx_meeting_abandon(struct cbx_meeting *meeting)
{
	atomic_store(&meeting->abandoned, 1);
	atomic_fetch_add(&meeting->round, 1);	/* a part about to sleep on the old round does not */
	futex_wake(&meeting->round, INT_MAX);
}

bool cbx_pool_run(struct cbx_pool *pool, cbx_pool_fn fn, void *arg, int *status)
{
	unsigned int part;

	if (getpid() != pool->owner || pthread_mutex_trylock(&pool->busy) != 0)
		return false;
	pool->fn = fn;
	pool->arg = arg;
	atomic_store_explicit(&pool->remaining, pool->threads - 1, memory_order_relaxed);
	pthread_mutex_lock(&pool->lock);
	atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	pool->status[0] = fn(arg, 0, pool->threads);
	wait_for_workers(pool);
	*status = 0;
	for (part = 0; part < pool->threads && !*status; part++)
		*status = pool->status[part];
	pthread_mutex_unlock(&pool->busy);
	return true;
}
