/* SPDX-License-Identifier: MIT */
/*
 * The one clock the user-space host reads: monotonic nanoseconds.
 */
#ifndef CBX_USER_CLOCK_H
#define CBX_USER_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t cbx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* CBX_USER_CLOCK_H */
