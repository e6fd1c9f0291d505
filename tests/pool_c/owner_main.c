// SPDX-License-Identifier: MIT
/*
 * Runs one job of STEPS steps on a 2-thread pool (pool.c) and prints, per
 * step, which thread ran which task: tests/test_pool_owner.py reads it.
 *   owner:   1 task per thread, task 0 the long one, so both threads reach
 *            each step's end together and race for the next step's tasks.
 *   balance: 4 tasks per thread, the worker's (4-7) long, the caller's
 *            instant, so the caller is left waiting while the worker works.
 * Output: one line per step, "c" or "w" per task (caller or worker).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cerebro/abi.h>

#include "pool.h"

#define STEPS 400
#define LONG_NS 40000u
#define MAX_TASKS 8

static pthread_t ran_by[STEPS][MAX_TASKS];
static unsigned int long_from, long_to;	/* tasks long_from..long_to - 1 are the long ones */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int task(void *arg, unsigned int step, unsigned int part, unsigned int parts)
{
	uint64_t until = now_ns() + LONG_NS;

	(void)arg;
	(void)parts;
	ran_by[step][part] = pthread_self();
	while (part >= long_from && part < long_to && now_ns() < until)
		;
	return step + 1 == STEPS ? CEREBRO_LAST_STEP : 0;
}

static int alone(void *arg)
{
	(void)arg;
	return -1;
}

int main(int argc, char **argv)
{
	struct cbx_error err = { 0 };
	struct cbx_pool *pool;
	bool balance = argc > 1 && strcmp(argv[1], "balance") == 0;
	unsigned int per_thread = balance ? 4 : 1, step, t;
	int status;

	long_from = balance ? 4 : 0;
	long_to = balance ? 8 : 1;
	if (cbx_pool_create(&pool, 2, per_thread, &err) != CBX_OK ||
	    !cbx_pool_run(pool, task, alone, NULL, &status) || status) {
		fprintf(stderr, "pool failed\n");
		return 1;
	}
	for (step = 0; step < STEPS; step++) {
		for (t = 0; t < 2 * per_thread; t++)
			putchar(pthread_equal(ran_by[step][t], pthread_self()) ? 'c' : 'w');
		putchar('\n');
	}
	cbx_pool_destroy(pool);
	return 0;
}
