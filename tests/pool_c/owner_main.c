// SPDX-License-Identifier: MIT
/*
 * Runs one job of STEPS steps on a 2-thread pool (pool.c) and prints how
 * many steps' task 0 ran on the calling thread and task 1 on the worker.
 * Task 0 is the long one, so both threads reach each step's end together
 * and race for the next step's tasks: only a pool where each thread takes
 * its own task first keeps task 0 on the caller (tests/test_pool_owner.py).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cerebro/abi.h>

#include "pool.h"

#define STEPS 400
#define TASK0_NS 40000u

static pthread_t ran_by[STEPS][2];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int task(void *arg, unsigned int step, unsigned int part, unsigned int parts)
{
	uint64_t until = now_ns() + TASK0_NS;

	(void)arg;
	(void)parts;
	ran_by[step][part] = pthread_self();
	while (part == 0 && now_ns() < until)
		;
	return step + 1 == STEPS ? CEREBRO_LAST_STEP : 0;
}

static int alone(void *arg)
{
	(void)arg;
	return -1;
}

int main(void)
{
	struct cbx_error err = { 0 };
	struct cbx_pool *pool;
	unsigned int step, caller_task0 = 0, worker_task1 = 0;
	int status;

	if (cbx_pool_create(&pool, 2, &err) != CBX_OK || !cbx_pool_run(pool, task, alone, NULL, &status) || status) {
		fprintf(stderr, "pool failed\n");
		return 1;
	}
	for (step = 0; step < STEPS; step++) {
		caller_task0 += pthread_equal(ran_by[step][0], pthread_self()) != 0;
		worker_task1 += pthread_equal(ran_by[step][1], pthread_self()) == 0;
	}
	cbx_pool_destroy(pool);
	printf("%u %u %u\n", STEPS, caller_task0, worker_task1);
	return 0;
}
