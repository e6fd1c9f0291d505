/* SPDX-License-Identifier: MIT */
/*
 * kernel_fpu_begin()/kernel_fpu_end() for the files that bracket FP work
 * (the FP code itself is cerebro_fp.c, built with the kernel's
 * CC_FLAGS_FPU; see Kbuild). Linux 6.10 and later declare them in
 * <linux/fpu.h>, which also refuses to be included by a file built with
 * FP enabled; older kernels only have the x86 header.
 */
#ifndef CEREBRO_FPU_H
#define CEREBRO_FPU_H

#if __has_include(<linux/fpu.h>)
#include <linux/fpu.h>
#else
#include <asm/fpu/api.h>
#endif

#endif /* CEREBRO_FPU_H */
