// SPDX-License-Identifier: MIT
/*
 * The worker pool behind multi-threaded calls. A job is published by bumping
 * a generation counter; each worker spins on it for about SPIN_NS (so calls
 * that follow each other closely never sleep), then sleeps on it (a futex:
 * no lock a descheduled worker could hold up the caller with). A step has
 * several tasks per thread: thread k (the caller is 0) owns the k-th run of
 * them and claims those in order, then waits for the step's other tasks to
 * return: spins about SPIN_NS, then sleeps on a futex that each finished task
 * wakes while anyone sleeps. A task its owner has not claimed STEAL_NS into
 * that wait goes to the waiting thread, the other runs' last tasks first: a
 * thread whose share of a step is cheaper (a kernel's parts are even in units,
 * not in time: regnet's convs at 2 threads took 1.5x longer on one part than
 * on the other) takes the end of the other's, and no step waits for a worker
 * the scheduler took away; the grace keeps an owner that is merely a moment
 * late, as it is after a serial node's step, from losing its task. Each task
 * has a claim word of its
 * own (the job's generation and the steps of that task claimed, moved on by a
 * compare-and-swap), so a worker that wakes up late can never take a task of
 * a later job. Taking its own task first keeps each thread on the same share
 * of consecutive nodes (a node's output stays in the cache of the core that
 * wrote it, where the next node's part reads it) and the serial nodes, which
 * run as task 0, on the caller; when tasks went to whichever thread came
 * first, a shufflenet at batch 8 used 1.5x the CPU time of one thread. A
 * worker the scheduler has taken away claims nothing, so the others do its
 * share; only a task preempted while running delays a step. The caller
 * returns once every claimed task has returned, never waiting for a worker
 * that took none.
 *
 *
 * Sharing a job only pays while the workers get CPUs of their own: under a
 * competing load their waiting and their tasks take time from the caller's
 * share of the machine. So the caller runs jobs one way, shared or alone,
 * times them (an EWMA; a job counts at most OUTLIER times the average) and
 * now and then tries the other way, taking it if that try beat the average:
 * after PROBE_MIN jobs, twice as many after each try that changes nothing
 * (at most PROBE_MAX, so few calls pay for a try), PROBE_MIN again after a
 * switch. On idle cores jobs are shared; under load they run alone, as fast
 * as with one thread. Alone, the tries of sharing are spaced out in time
 * instead: RETRY_NS of jobs after a switch, twice that after each try that
 * changes nothing, at most RETRY_MAX_NS, so a load that has gone is noticed
 * soon after however many jobs ran under it (counted in jobs, the tries of a
 * pool that had run alone for 600 jobs of 1 ms came 424 jobs after the load
 * went; ONNX Runtime's worker spins on its pinned CPU for ~60 ms after each
 * of its calls, and squeezenet's 2-thread calls after it stayed alone, 7.7 ms
 * instead of 5.0, for whole 0.25 s blocks), and a steady load pays for a try
 * at most every RETRY_MAX_NS and at most every 1, 2, 4, then PROBE_MIN jobs
 * after the switch. (With PROBE_MIN jobs at least, convnext_tiny at batch 8, 0.73 s
 * alone and 0.37 s shared, went alone on a probe during a 7 s load, alone
 * beating shared-under-load by 1-8%, and ran 6 more jobs alone, 4.4 s after
 * the load had gone: two whole zoo blocks at 0.77 s a call; cbx_pool_stats
 * shows it.)
 */
#define _GNU_SOURCE
#include "pool.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include <cerebro/abi.h>

#include "clock.h"

/*
 * A waiting thread spins this long before it sleeps: a woken sleeper comes
 * back tens of microseconds late, with colder caches. 300 us against 50 us,
 * 2 threads, interleaved medians (both orders): 0.96-0.99x the time on
 * squeezenet1_1, mobilenet_v3_large and regnet_y_400mf at batch 1,
 * shufflenet_v2 and mobilenet_v3_large at batch 8.
 */
#define SPIN_NS 300000u
#define STEAL_NS 5000u		/* a step's task unclaimed this long into a wait goes to the waiter */
#define SPINS_PER_CLOCK 64u	/* pauses between clock reads */
#define CLOSED 0x80000000u	/* in a claim word or the job word: no more tasks of this job */
#define PROBE_MIN 8u		/* jobs between tries of the slower way, at first */
#define PROBE_MAX 1024u
#ifndef RETRY_NS			/* tests/pool_c scale these down to run long jobs' cases quickly */
#define RETRY_NS 100000000u	/* alone, the first try of sharing this long after the switch */
#define RETRY_MAX_NS 1600000000u
#endif
#define OUTLIER 4u		/* a job counts at most this many times the average */

struct cbx_worker {
	struct cbx_pool *pool;
	unsigned int index;		/* whose tasks it takes first: 1 .. threads - 1 */
	pthread_t thread;
};

/* One task's claims, alone on its cache line: its owner claims it without contention. */
struct cbx_claim {
	_Alignas(64) _Atomic uint64_t word;	/* generation << 32 | steps of the task claimed | CLOSED */
};

struct cbx_pool {
	unsigned int threads;
	unsigned int tasks;		/* per step, threads * per_thread: thread k owns k * per_thread on */
	unsigned int per_thread;
	unsigned int started;		/* workers running */
	pid_t owner;			/* a forked child has no workers */
	struct cbx_worker *workers;	/* threads - 1 */
	pthread_mutex_t busy;		/* held while a job runs */
	cbx_pool_fn fn;			/* the current job, published by generation */
	void *arg;
	atomic_uint generation;		/* jobs published (a futex word) */
	atomic_uint idle_sleepers;	/* workers asleep on generation */
	atomic_bool stop;
	/* the caller's, under busy: how jobs ran lately */
	uint64_t average_ns;		/* of jobs run this way: 0 until timed */
	bool shared;			/* the way: shared or alone */
	unsigned int probe_in;		/* jobs until the next try of the other way */
	unsigned int probe_every;	/* PROBE_MIN..PROBE_MAX; alone from 1 (next_probe) */
	uint64_t retry_ns;		/* alone: RETRY_NS..RETRY_MAX_NS of jobs between tries */
	/* written under busy, read by cbx_pool_stats from any thread */
	_Atomic uint64_t counts[CBX_POOL_COUNTS];	/* enum cbx_pool_count */
	struct cbx_claim *claims;	/* one per task of a step */
	_Alignas(64) _Atomic uint64_t job;	/* generation << 32 | CLOSED */
	_Alignas(64) atomic_uint done;	/* tasks of the job returned (a futex word) */
	atomic_uint sleepers;		/* threads asleep on done */
	atomic_uint steps;		/* the job's, once a task returned CEREBRO_LAST_STEP; else 0 */
	atomic_int status;		/* the job's first error, 0 if none */
	/* cbx_pool_run_traced's: when each step's last task returned (ns after the job began) */
	uint64_t *trace;
	unsigned int trace_len;
	uint64_t trace_start;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
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

static void futex_wake_all(atomic_uint *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Waits until the generation moves past @seen (stop moves it too); returns it. */
static unsigned int wait_for_job(struct cbx_pool *pool, unsigned int seen)
{
	uint64_t deadline = cbx_now_ns() + SPIN_NS;
	unsigned int gen, spins = 0;

	while ((gen = atomic_load(&pool->generation)) == seen) {
		cpu_relax();
		if (++spins % SPINS_PER_CLOCK == 0 && cbx_now_ns() > deadline)
			break;
	}
	/* seq_cst: either this sees the new generation or its publisher sees a sleeper */
	atomic_fetch_add(&pool->idle_sleepers, 1);
	while ((gen = atomic_load(&pool->generation)) == seen)
		futex_wait(&pool->generation, seen);
	atomic_fetch_sub(&pool->idle_sleepers, 1);
	return gen;
}

/* Moves the generation on to @gen and wakes the workers asleep on it. */
static void publish(struct cbx_pool *pool, unsigned int gen)
{
	atomic_store(&pool->generation, gen);
	if (atomic_load(&pool->idle_sleepers))
		futex_wake_all(&pool->generation);
}

/* Job @gen takes no more tasks: it failed, was closed or is over (a later job began, or stop). */
static bool job_closed(struct cbx_pool *pool, uint32_t gen)
{
	uint64_t job = atomic_load(&pool->job);

	return (uint32_t)(job >> 32) != gen || (job & CLOSED) || atomic_load(&pool->status) ||
	       atomic_load(&pool->stop);
}

/* Claims task @task of step @step of job @gen: true if this thread is to run it. */
static bool claim_task(struct cbx_pool *pool, uint32_t gen, unsigned int step, unsigned int task)
{
	uint64_t expected = (uint64_t)gen << 32 | step;

	if (atomic_load(&pool->status) || atomic_load_explicit(&pool->claims[task].word, memory_order_relaxed) != expected)
		return false;
	return atomic_compare_exchange_strong(&pool->claims[task].word, &expected, expected + 1);
}

static bool enough_done(struct cbx_pool *pool, uint32_t gen, unsigned int count, bool until_closed,
			unsigned int *done)
{
	*done = atomic_load(&pool->done);
	return *done >= count || (until_closed && job_closed(pool, gen));
}

static void tasks_returned(struct cbx_pool *pool, unsigned int step, unsigned int count);

/* Runs the task if this thread claims it first: 1 if it ran (count it with tasks_returned), else 0. */
static unsigned int run_task(struct cbx_pool *pool, uint32_t gen, unsigned int step, unsigned int task)
{
	int ret, none = 0;

	if (!claim_task(pool, gen, step, task))
		return 0;
	ret = pool->fn(pool->arg, step, task, pool->tasks);
	if (ret == CEREBRO_LAST_STEP)
		atomic_store(&pool->steps, step + 1);
	else if (ret != 0)
		atomic_compare_exchange_strong(&pool->status, &none, ret);
	return 1;
}

/* Runs every task of step @step of job @gen still unclaimed, each other thread's last ones first. */
static void steal_tasks(struct cbx_pool *pool, uint32_t gen, unsigned int step, unsigned int self)
{
	unsigned int k, j, owner, ran = 0;

	for (k = 1; k < pool->threads; k++) {
		owner = (self + k) % pool->threads;
		for (j = pool->per_thread; j-- > 0;)
			ran += run_task(pool, gen, step, owner * pool->per_thread + j);
	}
	tasks_returned(pool, step, ran);
}

/*
 * Waits until @count tasks of job @gen have returned (or, @until_closed, the
 * job takes no more): spins about SPIN_NS, then sleeps on done. Thread
 * @self, waiting in step @step (UINT_MAX: none), takes the step's tasks still
 * unclaimed after STEAL_NS, and all of them before it sleeps.
 */
static void wait_done(struct cbx_pool *pool, uint32_t gen, unsigned int count, bool until_closed,
		      unsigned int step, unsigned int self)
{
	uint64_t start = cbx_now_ns(), now;
	unsigned int done, spins = 0;
	bool stolen = step == UINT_MAX;

	while (!enough_done(pool, gen, count, until_closed, &done)) {
		cpu_relax();
		if (++spins % SPINS_PER_CLOCK)
			continue;
		now = cbx_now_ns();
		if (!stolen && now > start + STEAL_NS) {
			steal_tasks(pool, gen, step, self);
			stolen = true;
		} else if (now > start + SPIN_NS) {
			break;
		}
	}
	if (!stolen)
		steal_tasks(pool, gen, step, self);
	/* seq_cst: either this sees the new count or the task that made it sees a sleeper */
	atomic_fetch_add(&pool->sleepers, 1);
	while (!enough_done(pool, gen, count, until_closed, &done))
		futex_wait(&pool->done, done);
	atomic_fetch_sub(&pool->sleepers, 1);
}

/* *@slot = max(*@slot, @ns): when the step's last task returned, whichever thread ran it. */
static void trace_max(uint64_t *slot, uint64_t ns)
{
	uint64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED);

	while (seen < ns && !__atomic_compare_exchange_n(slot, &seen, ns, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * Counts @count tasks of step @step that this thread ran (run_task): one
 * update of the shared count for a thread's whole run of tasks, not one per
 * task (the line moves between the cores on every update). 2 threads, A/B
 * in one process under SCHED_FIFO, 2 x 300 interleaved calls: 0.979-1.007x
 * the median time (7 of 8 below 1) on shufflenet_v2, mobilenet_v3_large,
 * squeezenet1_1 and regnet_y_400mf at batch 1; the minimum 0.97-0.995x.
 */
static void tasks_returned(struct cbx_pool *pool, unsigned int step, unsigned int count)
{
	if (!count)
		return;
	if (step < pool->trace_len)	/* before the count moves: the caller reads the trace once it has */
		trace_max(&pool->trace[step], cbx_now_ns() - pool->trace_start);
	atomic_fetch_add(&pool->done, count);
	if (atomic_load(&pool->sleepers))
		futex_wake_all(&pool->done);
}

/*
 * Thread @self takes its own tasks of each step of job @gen (and those others
 * leave, wait_done), until its last step is done or it takes no more. (A
 * thread that comes late may find a later step's tasks running, even the last
 * step's: it leaves only once its own step is the last.)
 */
static void run_tasks(struct cbx_pool *pool, uint32_t gen, unsigned int self)
{
	unsigned int step = 0, steps, j, ran;

	for (;;) {
		for (j = 0, ran = 0; j < pool->per_thread; j++)
			ran += run_task(pool, gen, step, self * pool->per_thread + j);
		tasks_returned(pool, step, ran);
		if (job_closed(pool, gen))
			return;
		wait_done(pool, gen, (step + 1) * pool->tasks, true, step, self);
		steps = atomic_load(&pool->steps);
		if (steps && step + 1 >= steps)
			return;
		step++;
	}
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
		run_tasks(pool, seen, w->index);
	}
}

static void stop_workers(struct cbx_pool *pool)
{
	unsigned int i;

	atomic_store(&pool->stop, true);
	publish(pool, atomic_load(&pool->generation) + 1);
	atomic_fetch_add(&pool->done, 1);	/* a worker still asleep in its last job wakes up */
	futex_wake_all(&pool->done);
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
		pool->workers[i].index = i + 1;
		ret = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
		if (ret)
			break;
		pool->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int cbx_pool_create(struct cbx_pool **out, unsigned int threads, unsigned int per_thread, struct cbx_error *err)
{
	struct cbx_pool *pool;
	unsigned int i;
	int ret;

	*out = NULL;
	if (threads == 0 || per_thread == 0 || per_thread > CEREBRO_MAX_PARTS / threads)
		return cbx_fail(err, CBX_ERUN, "a thread pool of %u threads cannot take %u tasks each per step",
				threads, per_thread);
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return cbx_fail(err, CBX_ENOMEM, "out of memory creating a thread pool");
	pool->threads = threads;
	pool->per_thread = per_thread;
	pool->tasks = threads * per_thread;
	pool->owner = getpid();
	pool->shared = true;
	pool->probe_in = PROBE_MIN;
	pool->probe_every = PROBE_MIN;
	pool->retry_ns = RETRY_NS;
	pool->workers = calloc(threads, sizeof(*pool->workers));
	pool->claims = aligned_alloc(_Alignof(struct cbx_claim), pool->tasks * sizeof(*pool->claims));
	if (!pool->workers || !pool->claims) {
		free(pool->workers);
		free(pool->claims);
		free(pool);
		return cbx_fail(err, CBX_ENOMEM, "out of memory creating a thread pool");
	}
	pthread_mutex_init(&pool->busy, NULL);
	atomic_init(&pool->generation, 0);
	atomic_init(&pool->idle_sleepers, 0);
	for (i = 0; i < pool->tasks; i++)
		atomic_init(&pool->claims[i].word, 0);
	atomic_init(&pool->job, 0);
	atomic_init(&pool->done, 0);
	atomic_init(&pool->sleepers, 0);
	atomic_init(&pool->steps, 0);
	atomic_init(&pool->status, 0);
	atomic_init(&pool->stop, false);
	for (i = 0; i < CBX_POOL_COUNTS; i++)
		atomic_init(&pool->counts[i], 0);
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
	/* A forked child has no workers to stop: just free. */
	if (getpid() == pool->owner) {
		stop_workers(pool);
		pthread_mutex_destroy(&pool->busy);
	}
	free(pool->workers);
	free(pool->claims);
	free(pool);
}

unsigned int cbx_pool_threads(const struct cbx_pool *pool)
{
	return pool->threads;
}

unsigned int cbx_pool_tasks(const struct cbx_pool *pool)
{
	return pool->tasks;
}

/* Every thread takes tasks of the job until it is over; returns the first error or 0. */
static int run_shared(struct cbx_pool *pool, cbx_pool_fn fn, void *arg)
{
	uint32_t gen = atomic_load(&pool->generation) + 1, claimed = 0;
	unsigned int task;

	pool->fn = fn;
	pool->arg = arg;
	atomic_store(&pool->done, 0);
	atomic_store(&pool->steps, 0);
	atomic_store(&pool->status, 0);
	for (task = 0; task < pool->tasks; task++)
		atomic_store(&pool->claims[task].word, (uint64_t)gen << 32);
	atomic_store(&pool->job, (uint64_t)gen << 32);
	publish(pool, gen);
	run_tasks(pool, gen, 0);
	/* the job is over: no more tasks, and every claimed one must have returned */
	atomic_fetch_or(&pool->job, CLOSED);
	for (task = 0; task < pool->tasks; task++)
		claimed += (uint32_t)atomic_fetch_or(&pool->claims[task].word, CLOSED) & ~CLOSED;
	wait_done(pool, gen, claimed, false, UINT_MAX, 0);
	return atomic_load(&pool->status);
}

/*
 * Jobs until the next try of the other way: alone, retry_ns of them, but at least probe_every (1 after
 * the switch, doubled after each try that changes nothing) up to PROBE_MIN, and at most PROBE_MAX.
 * At least PROBE_MIN jobs from the switch on kept a job longer than RETRY_NS / PROBE_MIN alone 8 jobs
 * after any switch, 5.8 s for convnext_tiny at batch 8 (0.73 s alone), longer than a zoo block; at
 * least 1 made every job longer than RETRY_MAX_NS a try of sharing under a steady load; a floor
 * doubling on past PROBE_MIN would space the tries of 5 ms jobs beyond RETRY_MAX_NS.
 */
static unsigned int next_probe(const struct cbx_pool *pool)
{
	unsigned int floor;
	uint64_t jobs;

	if (pool->shared || !pool->average_ns)
		return pool->probe_every;
	floor = pool->probe_every < PROBE_MIN ? pool->probe_every : PROBE_MIN;
	jobs = pool->retry_ns / pool->average_ns;
	return jobs < floor ? floor : jobs > PROBE_MAX ? PROBE_MAX : (unsigned int)jobs;
}

static void count(struct cbx_pool *pool, enum cbx_pool_count which)
{
	atomic_fetch_add_explicit(&pool->counts[which], 1, memory_order_relaxed);
}

/* Counts a job that took @ns, run the usual way or, if @probe, the other way. */
static void timed(struct cbx_pool *pool, uint64_t ns, bool probe)
{
	if (!probe) {
		if (pool->average_ns && ns > OUTLIER * pool->average_ns)
			ns = OUTLIER * pool->average_ns;
		pool->average_ns = pool->average_ns ? pool->average_ns - pool->average_ns / 4 + ns / 4 : ns;
		return;
	}
	if (ns < pool->average_ns) {
		count(pool, pool->shared ? CBX_POOL_TO_ALONE : CBX_POOL_TO_SHARED);
		pool->shared = !pool->shared;
		pool->average_ns = ns;
		pool->probe_every = pool->shared ? PROBE_MIN : 1;
		pool->retry_ns = RETRY_NS;
	} else {
		if (pool->probe_every < PROBE_MAX)
			pool->probe_every *= 2;
		if (!pool->shared && pool->retry_ns < RETRY_MAX_NS)
			pool->retry_ns *= 2;
	}
	pool->probe_in = next_probe(pool);
}

bool cbx_pool_run(struct cbx_pool *pool, cbx_pool_fn fn, cbx_pool_alone_fn alone, void *arg, int *status)
{
	bool probe, shared;
	uint64_t start;

	if (getpid() != pool->owner || pthread_mutex_trylock(&pool->busy) != 0)
		return false;
	probe = --pool->probe_in == 0;
	shared = pool->shared != probe;
	start = cbx_now_ns();
	*status = shared ? run_shared(pool, fn, arg) : alone(arg);
	count(pool, shared ? CBX_POOL_SHARED : CBX_POOL_ALONE);
	if (probe)
		count(pool, CBX_POOL_PROBES);
	timed(pool, cbx_now_ns() - start, probe);
	pthread_mutex_unlock(&pool->busy);
	return true;
}

void cbx_pool_stats(const struct cbx_pool *pool, uint64_t counts[CBX_POOL_COUNTS])
{
	unsigned int i;

	for (i = 0; i < CBX_POOL_COUNTS; i++)
		counts[i] = atomic_load_explicit(&pool->counts[i], memory_order_relaxed);
}

bool cbx_pool_run_traced(struct cbx_pool *pool, cbx_pool_fn fn, void *arg, int *status,
			 uint64_t *step_end_ns, unsigned int max_steps, unsigned int *steps)
{
	if (getpid() != pool->owner || pthread_mutex_trylock(&pool->busy) != 0)
		return false;
	memset(step_end_ns, 0, sizeof(*step_end_ns) * max_steps);
	pool->trace = step_end_ns;
	pool->trace_len = max_steps;
	pool->trace_start = cbx_now_ns();
	*status = run_shared(pool, fn, arg);
	*steps = atomic_load(&pool->steps);
	pool->trace = NULL;
	pool->trace_len = 0;
	pthread_mutex_unlock(&pool->busy);
	return true;
}
