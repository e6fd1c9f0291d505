/* SPDX-License-Identifier: MIT */
/*
 * Force-included into cerebro.ko: the libc limits the shared core
 * (runtime_kmod/core, arch) uses, spelled with the kernel's names.
 */
#ifndef CEREBRO_PORT_KERNEL_H
#define CEREBRO_PORT_KERNEL_H

#include <linux/limits.h>

#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef INT64_MAX
#define INT64_MAX S64_MAX
#endif

#endif /* CEREBRO_PORT_KERNEL_H */
