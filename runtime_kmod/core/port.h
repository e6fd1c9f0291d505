/* SPDX-License-Identifier: MIT */
/*
 * The only C library the core uses, mapped to the kernel or to libc, so the
 * same files build in both hosts.
 */
#ifndef CBX_PORT_H
#define CBX_PORT_H

#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/stdarg.h>
#include <linux/stddef.h>
#include <linux/limits.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#else
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .cbx core assumes a little-endian host"
#endif

#define cbx_vsnprintf vsnprintf
#define cbx_memcpy memcpy
#define cbx_memset memset
#define cbx_memcmp memcmp
#define cbx_strcmp strcmp

/*
 * Called between chunks of long loops (parsing and hashing up to 512 MiB):
 * the kernel lets other tasks run and gives up when the caller is being
 * killed; user space has nothing to do. Nonzero means "stop now".
 */
#ifdef __KERNEL__
static inline int cbx_port_yield(void)
{
	cond_resched();
	return fatal_signal_pending(current);
}
#else
static inline int cbx_port_yield(void)
{
	return 0;
}
#endif

/*
 * Hashes @blocks 64-byte SHA-256 blocks into @state with the CPU's SHA
 * instructions and returns 1, or returns 0 (nothing done) where the host has
 * none: the kernel never uses them (core/sha256.c's portable rounds run),
 * user space asks the CPU (user/sha256_hw.c).
 */
#ifdef __KERNEL__
static inline int cbx_port_sha256_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	return 0;
}
#else
int cbx_port_sha256_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks);
/* The instructions cbx_port_sha256_blocks uses ("x86 SHA-NI"), or NULL when portable. */
const char *cbx_port_sha256_hardware(void);
#endif

#define CBX_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#endif /* CBX_PORT_H */
