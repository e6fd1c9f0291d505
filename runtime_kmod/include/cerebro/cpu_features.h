/* SPDX-License-Identifier: MIT */
/*
 * The CPU features a .cbx may require ("+name" in meta.features, LLVM's
 * spelling), stated once. compiler/targets.py reads the names (a host
 * compile records its subset of them), the user-space runtime
 * (user/cpu.c) detects them with cpuid/xgetbv or the auxiliary vector, the
 * kernel module (kernel/cerebro_cpu.c) with boot_cpu_has() or
 * cpu_have_feature(). A name missing here is refused by both runtimes as
 * one they cannot check. tests/test_cpu_features.py checks each row
 * against the kernel's own headers.
 *
 * CEREBRO_X86_FEATURES(X): X(name, leaf, subleaf, reg, bit, xcr0, kernel)
 *   leaf, subleaf, reg, bit: where cpuid reports the feature;
 *   xcr0: the register state the OS must have enabled (CEREBRO_XCR0_*);
 *   kernel: the X86_FEATURE_* name, without the prefix.
 * CEREBRO_ARM64_FEATURES(X): X(name, auxv, cap)
 *   auxv: HWCAP or HWCAP2, the auxiliary vector word (AT_HWCAP, AT_HWCAP2);
 *   cap: the bit's name there (HWCAP_FP, ...), also the kernel's
 *   KERNEL_HWCAP_* name.
 */
#ifndef CEREBRO_CPU_FEATURES_H
#define CEREBRO_CPU_FEATURES_H

/* cpuid output registers, as indices */
#define CEREBRO_CPUID_EAX 0
#define CEREBRO_CPUID_EBX 1
#define CEREBRO_CPUID_ECX 2
#define CEREBRO_CPUID_EDX 3

/* XCR0 bits the OS sets once it saves the state a feature's registers need */
#define CEREBRO_XCR0_NONE 0x0ull
#define CEREBRO_XCR0_AVX 0x6ull	/* SSE and AVX (YMM) state */
#define CEREBRO_XCR0_AVX512 0xe6ull	/* plus opmask, ZMM_Hi256 and Hi16_ZMM */

#define CEREBRO_X86_FEATURES(X)						\
	X("sse2",	0x1,		0, EDX, 26, NONE,   XMM2)		\
	X("sse3",	0x1,		0, ECX,  0, NONE,   XMM3)		\
	X("ssse3",	0x1,		0, ECX,  9, NONE,   SSSE3)		\
	X("sse4.1",	0x1,		0, ECX, 19, NONE,   XMM4_1)		\
	X("sse4.2",	0x1,		0, ECX, 20, NONE,   XMM4_2)		\
	X("popcnt",	0x1,		0, ECX, 23, NONE,   POPCNT)		\
	X("cx16",	0x1,		0, ECX, 13, NONE,   CX16)		\
	X("avx",	0x1,		0, ECX, 28, AVX,    AVX)		\
	X("avx2",	0x7,		0, EBX,  5, AVX,    AVX2)		\
	X("fma",	0x1,		0, ECX, 12, AVX,    FMA)		\
	X("f16c",	0x1,		0, ECX, 29, AVX,    F16C)		\
	X("bmi",	0x7,		0, EBX,  3, NONE,   BMI1)		\
	X("bmi2",	0x7,		0, EBX,  8, NONE,   BMI2)		\
	X("lzcnt",	0x80000001,	0, ECX,  5, NONE,   ABM)		\
	X("movbe",	0x1,		0, ECX, 22, NONE,   MOVBE)		\
	X("avx512f",	0x7,		0, EBX, 16, AVX512, AVX512F)		\
	X("avx512bw",	0x7,		0, EBX, 30, AVX512, AVX512BW)		\
	X("avx512cd",	0x7,		0, EBX, 28, AVX512, AVX512CD)		\
	X("avx512dq",	0x7,		0, EBX, 17, AVX512, AVX512DQ)		\
	X("avx512vl",	0x7,		0, EBX, 31, AVX512, AVX512VL)		\
	X("avx512vnni",	0x7,		0, ECX, 11, AVX512, AVX512_VNNI)	\
	X("avx512bf16",	0x7,		1, EAX,  5, AVX512, AVX512_BF16)	\
	X("avxvnni",	0x7,		1, EAX,  4, AVX,    AVX_VNNI)

#define CEREBRO_ARM64_FEATURES(X)					\
	X("neon",	HWCAP,	ASIMD)						\
	X("fp-armv8",	HWCAP,	FP)						\
	X("fullfp16",	HWCAP,	ASIMDHP)					\
	X("dotprod",	HWCAP,	ASIMDDP)					\
	X("sve",	HWCAP,	SVE)						\
	X("sve2",	HWCAP2,	SVE2)						\
	X("i8mm",	HWCAP2,	I8MM)						\
	X("bf16",	HWCAP2,	BF16)

#endif /* CEREBRO_CPU_FEATURES_H */
