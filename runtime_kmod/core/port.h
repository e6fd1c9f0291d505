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

#define CBX_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#endif /* CBX_PORT_H */
