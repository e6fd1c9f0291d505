// SPDX-License-Identifier: MIT
/*
 * A 2-thread pool (pool.c) under a load that comes and goes: LOADED_JOBS
 * jobs during which sharing is slower than running alone (the shared job
 * takes 3 ms, alone 1 ms), so the pool runs them alone and tries sharing
 * less and less often; then sharing is faster (0.25 ms). Prints how many
 * jobs ran before the first shared one after the load went:
 * tests/test_pool_owner.py reads it. (Alone from job 8, the pool tries
 * sharing at jobs 108 and 308; tries counted in jobs came at 24, 56, 120,
 * 248 and 504.)
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cerebro/abi.h>

#include "pool.h"

#define LOADED_JOBS 300
#define MAX_JOBS 2000
#define ALONE_NS 1000000u
#define LOADED_NS 3000000u
#define IDLE_NS 250000u

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
	busy(ALONE_NS);
	return 0;
}

int main(void)
{
	struct cbx_error err = { 0 };
	struct cbx_pool *pool;
	unsigned int job;
	int status;

	if (cbx_pool_create(&pool, 2, 1, &err) != CBX_OK) {
		fprintf(stderr, "pool failed: %s\n", err.msg);
		return 1;
	}
	for (job = 0; job < LOADED_JOBS; job++)
		cbx_pool_run(pool, task, alone, NULL, &status);
	shared_ns = IDLE_NS;
	ran_shared = false;
	for (job = 0; job < MAX_JOBS && !ran_shared; job++)
		cbx_pool_run(pool, task, alone, NULL, &status);
	printf("%u\n", job);
	cbx_pool_destroy(pool);
	return 0;
}
