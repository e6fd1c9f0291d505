/* SPDX-License-Identifier: MIT */
/*
 * A small fixed pool of worker threads that run the parts of one job at a
 * time. The calling thread is part 0; workers spin briefly for the next job
 * (back-to-back calls pay no wake-up), then sleep on a condition variable.
 * Parts of a job meet (cbx_meeting_wait) the same way: spin, then sleep.
 */
#ifndef CBX_USER_POOL_H
#define CBX_USER_POOL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "error.h"

struct cbx_pool;

/* Runs part @part (0 <= @part < parts) of a job; returns 0 or an error code. */
typedef int (*cbx_pool_fn)(void *arg, unsigned int part, unsigned int parts);

/* A pool for @threads parts per job: @threads - 1 workers (none for 1). */
int cbx_pool_create(struct cbx_pool **out, unsigned int threads, struct cbx_error *err);

/* Stops and joins every worker; the pool must be idle. NULL is a no-op. */
void cbx_pool_destroy(struct cbx_pool *pool);

unsigned int cbx_pool_threads(const struct cbx_pool *pool);

/*
 * Runs @fn(@arg, part, threads) for every part, part 0 on this thread, and
 * returns once all have returned, with *@status the first nonzero result
 * (by part) or 0. Returns false, running nothing, while another thread's job
 * holds the pool or in a forked child (which has no workers).
 */
bool cbx_pool_run(struct cbx_pool *pool, cbx_pool_fn fn, void *arg, int *status);

/*
 * Where the parts of one job meet, as often as they need: zero it (memset)
 * before the job. Fits CEREBRO_BARRIER_BYTES (the host keeps one in a split
 * call's arena).
 */
struct cbx_meeting {
	atomic_uint arrived;	/* parts at the current meeting */
	atomic_uint round;	/* meetings done (a futex word) */
	atomic_uint sleepers;	/* parts asleep on round: the last to arrive wakes them */
	atomic_uint abandoned;	/* a part left early: no meeting waits any more */
};

/*
 * Waits until all @parts parts have arrived here as often as this one:
 * spins briefly, then sleeps until the last to arrive wakes it, so a part
 * the scheduler took away costs the others only its own delay. Returns
 * false, without waiting, once the meeting is abandoned.
 */
bool cbx_meeting_wait(struct cbx_meeting *meeting, unsigned int parts);

/* A part that stops early (an error) releases every part waiting or yet to wait. */
void cbx_meeting_abandon(struct cbx_meeting *meeting);

#endif /* CBX_USER_POOL_H */
