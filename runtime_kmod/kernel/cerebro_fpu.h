/* SPDX-License-Identifier: MIT */
/*
 * kernel_fpu_begin()/kernel_fpu_end() for the files that bracket FP work
 * (the FP code itself is cerebro_fp.c, built with the kernel's
 * CC_FLAGS_FPU; see Kbuild). Linux 6.10 and later declare them in
 * <linux/fpu.h>, which also refuses to be included by a file built with
 * FP enabled; older kernels only have the arch headers. On arm64 they are
 * kernel_neon_begin()/kernel_neon_end() (<asm/neon.h>), which save the
 * task's FP/SIMD state and keep preemption off between them like x86's.
 */
#ifndef CEREBRO_FPU_H
#define CEREBRO_FPU_H

#if __has_include(<linux/fpu.h>)
#include <linux/fpu.h>
#elif defined(CONFIG_ARM64)
#include <asm/neon.h>
#define kernel_fpu_begin() kernel_neon_begin()
#define kernel_fpu_end() kernel_neon_end()
#else
#include <asm/fpu/api.h>
#endif

#endif /* CEREBRO_FPU_H */
