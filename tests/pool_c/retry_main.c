// SPDX-License-Identifier: MIT
/*
 * A 2-thread pool (pool.c) under a load that comes and goes: LOADED_JOBS
 * jobs during which sharing is slower than running alone (the shared job
 * takes 3 ms, alone 1 ms), so the pool runs them alone and tries sharing
 * less and less often; then sharing is faster (0.25 ms). Prints how many
 * jobs ran before the first shared one after the load went:
 * tests/test_pool_owner.py reads it. (Alone from job 8, the pool tries
 * sharing at jobs 108 and 308, the load gone at 260; tries counted in jobs
 * came at 24, 56, 120, 248 and 504. Tries are spaced by retry_ns over the
 * average job, so a VM whose jobs average 4% long tried at 296: with the
 * load lasting to job 300, a CI run tried inside it and waited 385 jobs.)
 *
 * With "long" (argv[1]), jobs as long as convnext_tiny's at batch 8 (alone
 * 40 ms, 80 ms shared under the load, 20 ms without): the pool goes alone
 * at job 8 and the load goes one job later. Tries of sharing spaced
 * RETRY_NS of jobs come 2 jobs later; at least PROBE_MIN jobs apart, 7 jobs
 * (0.28 s, a zoo block) later.
 *
 * With "steady", built with RETRY_NS 5 ms and RETRY_MAX_NS 20 ms (jobs
 * longer than RETRY_MAX_NS, as a 1.5 s job is at the real ones): the load
 * never goes. Prints how many of the STEADY_JOBS jobs after the loaded ones
 * ran shared (tries of sharing, each slower).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cerebro/abi.h>

#include "pool.h"

#define LOADED_JOBS 260
#define MAX_JOBS 2000
#define ALONE_NS 1000000u
#define LOADED_NS 3000000u
#define IDLE_NS 250000u

struct scenario {
	unsigned int loaded_jobs;
	uint64_t alone_ns, loaded_ns, idle_ns;
};

static const struct scenario SHORT = { LOADED_JOBS, ALONE_NS, LOADED_NS, IDLE_NS };
static const struct scenario LONG = { 9, 40000000u, 80000000u, 20000000u };
static const struct scenario STEADY = { 9, 30000000u, 60000000u, 60000000u };
static const struct scenario *run = &SHORT;
#define STEADY_JOBS 64
static uint64_t shared_ns = LOADED_NS;
static bool ran_shared;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void busy(uint64_t ns)
{
	uint64_t until = now_ns() + ns;

	while (now_ns() < until)
		;
}

/* One step; task 0 takes the whole job's time, so a shared job takes it whoever runs the tasks. */
static int task(void *arg, unsigned int step, unsigned int part, unsigned int parts)
{
	(void)arg;
	(void)step;
	(void)parts;
	ran_shared = true;
	if (part == 0)
		busy(shared_ns);
	return CEREBRO_LAST_STEP;
}

static int alone(void *arg)
{
	(void)arg;
	busy(run->alone_ns);
	return 0;
}

int main(int argc, char **argv)
{
	struct cbx_error err = { 0 };
	struct cbx_pool *pool;
	unsigned int job;
	int status;

	if (argc > 1 && strcmp(argv[1], "long") == 0)
		run = &LONG;
	if (argc > 1 && strcmp(argv[1], "steady") == 0)
		run = &STEADY;
	shared_ns = run->loaded_ns;
	if (cbx_pool_create(&pool, 2, 1, &err) != CBX_OK) {
		fprintf(stderr, "pool failed: %s\n", err.msg);
		return 1;
	}
	for (job = 0; job < run->loaded_jobs; job++)
		cbx_pool_run(pool, task, alone, NULL, &status);
	if (run == &STEADY) {
		unsigned int tries = 0;

		for (job = 0; job < STEADY_JOBS; job++) {
			ran_shared = false;
			cbx_pool_run(pool, task, alone, NULL, &status);
			tries += ran_shared;
		}
		printf("%u\n", tries);
		cbx_pool_destroy(pool);
		return 0;
	}
	shared_ns = run->idle_ns;
	ran_shared = false;
	for (job = 0; job < MAX_JOBS && !ran_shared; job++)
		cbx_pool_run(pool, task, alone, NULL, &status);
	printf("%u\n", job);
	cbx_pool_destroy(pool);
	return 0;
}
