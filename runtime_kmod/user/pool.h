/* SPDX-License-Identifier: MIT */
/*
 * A small fixed pool of worker threads that run one job at a time: steps of
 * a few tasks per thread, each step begun only once every task of the step
 * before has returned. The calling thread takes part and
 * any thread runs any task, so a worker the scheduler has taken away leaves
 * its tasks to the others instead of holding them up; when sharing jobs is
 * slower than running them alone (a competing load), the caller runs alone.
 */
#ifndef CBX_USER_POOL_H
#define CBX_USER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct cbx_pool;

/*
 * Runs task @part of @parts in step @step of a job. Returns 0 (more steps
 * follow), CEREBRO_LAST_STEP (abi.h: that was the last step; every task of
 * it says so) or an error code, which ends the job.
 */
typedef int (*cbx_pool_fn)(void *arg, unsigned int step, unsigned int part, unsigned int parts);

/* Runs a whole job on the calling thread alone; returns 0 or an error code. */
typedef int (*cbx_pool_alone_fn)(void *arg);

/*
 * A pool of @threads threads, @per_thread tasks each per step (threads *
 * per_thread <= CEREBRO_MAX_PARTS): @threads - 1 workers (none for 1).
 */
int cbx_pool_create(struct cbx_pool **out, unsigned int threads, unsigned int per_thread, struct cbx_error *err);

/* Stops and joins every worker; the pool must be idle. NULL is a no-op. */
void cbx_pool_destroy(struct cbx_pool *pool);

unsigned int cbx_pool_threads(const struct cbx_pool *pool);

/* Tasks per step: the parts each step of a job is split into. */
unsigned int cbx_pool_tasks(const struct cbx_pool *pool);

/*
 * Runs a job shared, @fn(@arg, ...) with this thread taking tasks too, or
 * by @alone(@arg) on this thread, whichever recent jobs found faster (pool.c),
 * and returns once every task begun has returned, with *@status the first
 * error or 0. Returns false, running nothing, while another thread's job
 * holds the pool or in a forked child (which has no workers).
 */
bool cbx_pool_run(struct cbx_pool *pool, cbx_pool_fn fn, cbx_pool_alone_fn alone, void *arg, int *status);

/* What cbx_pool_stats counts, since the pool was made (cbx_pool_run's jobs; traced ones are not counted). */
enum cbx_pool_count {
	CBX_POOL_SHARED,	/* jobs run shared */
	CBX_POOL_ALONE,		/* jobs run alone on the caller */
	CBX_POOL_PROBES,	/* of those, jobs run the other way as a try */
	CBX_POOL_TO_ALONE,	/* tries that switched from shared to alone */
	CBX_POOL_TO_SHARED,	/* and from alone to shared */
	CBX_POOL_COUNTS,
};

/*
 * How the pool's jobs ran (enum cbx_pool_count): whether a multi-threaded
 * model's calls were split or ran alone under a load. Safe from any thread.
 */
void cbx_pool_stats(const struct cbx_pool *pool, uint64_t counts[CBX_POOL_COUNTS]);

/*
 * Runs a job shared, as cbx_pool_run does but always shared and not counted
 * in its timing, and records when each step was over: @step_end_ns[step]
 * (for steps < @max_steps) gets the nanoseconds from the job's start until
 * the step's last task returned (on whichever thread ran it), so consecutive
 * differences are what each step cost the call, hand-offs and waits included
 * (a profile per step: cbx_model_profile_pool). *@steps
 * gets the job's steps. Returns false, running nothing, as cbx_pool_run does.
 */
bool cbx_pool_run_traced(struct cbx_pool *pool, cbx_pool_fn fn, void *arg, int *status,
			 uint64_t *step_end_ns, unsigned int max_steps, unsigned int *steps);

#endif /* CBX_USER_POOL_H */
