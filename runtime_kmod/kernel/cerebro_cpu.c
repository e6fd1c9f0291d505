// SPDX-License-Identifier: MIT
/*
 * A model compiled for CPU features this machine lacks would fault on its
 * first vector instruction, inside the kernel. The meta records the LLVM
 * features the code was built with; registration refuses the model unless
 * the boot CPU has every one of them.
 */
#include <linux/kernel.h>
#include <linux/string.h>

#include "cerebro_internal.h"

#ifdef CONFIG_X86
#include <asm/cpufeature.h>

static const struct {
	const char *name;	/* LLVM spelling */
	u16 feature;		/* X86_FEATURE_* */
} x86_features[] = {
	{ "sse", X86_FEATURE_XMM }, { "sse2", X86_FEATURE_XMM2 },
	{ "sse3", X86_FEATURE_XMM3 }, { "ssse3", X86_FEATURE_SSSE3 },
	{ "sse4.1", X86_FEATURE_XMM4_1 }, { "sse4.2", X86_FEATURE_XMM4_2 },
	{ "popcnt", X86_FEATURE_POPCNT }, { "cx16", X86_FEATURE_CX16 },
	{ "avx", X86_FEATURE_AVX }, { "avx2", X86_FEATURE_AVX2 },
	{ "fma", X86_FEATURE_FMA }, { "f16c", X86_FEATURE_F16C },
	{ "bmi", X86_FEATURE_BMI1 }, { "bmi2", X86_FEATURE_BMI2 },
	{ "lzcnt", X86_FEATURE_ABM }, { "movbe", X86_FEATURE_MOVBE },
	{ "avx512f", X86_FEATURE_AVX512F }, { "avx512bw", X86_FEATURE_AVX512BW },
	{ "avx512cd", X86_FEATURE_AVX512CD }, { "avx512dq", X86_FEATURE_AVX512DQ },
	{ "avx512vl", X86_FEATURE_AVX512VL }, { "avx512vnni", X86_FEATURE_AVX512_VNNI },
	{ "avx512bf16", X86_FEATURE_AVX512_BF16 }, { "avxvnni", X86_FEATURE_AVX_VNNI },
};

/* 1 if the CPU has it, 0 if not, -1 if the name is unknown. */
static int boot_cpu_has_named(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(x86_features); i++) {
		if (strcmp(x86_features[i].name, name) == 0)
			return boot_cpu_has(x86_features[i].feature) ? 1 : 0;
	}
	return -1;
}
#else
static int boot_cpu_has_named(const char *name)
{
	return strcmp(name, "neon") == 0 || strcmp(name, "fp-armv8") == 0 ? 1 : -1;
}
#endif

int cerebro_cpu_check(const char *features, char *why, size_t why_len)
{
	char list[sizeof(((struct cbx_meta *)0)->features)];
	char *rest = list, *item;
	int has;

	strscpy(list, features, sizeof(list));
	while ((item = strsep(&rest, ","))) {
		if (item[0] != '+')
			continue;	/* "-feature" or empty: nothing required */
		has = boot_cpu_has_named(item + 1);
		if (has == 1)
			continue;
		snprintf(why, why_len, has == 0 ? "needs CPU feature %s, which this CPU lacks" :
			 "needs CPU feature %s, which the kernel runtime does not know", item + 1);
		return -EOPNOTSUPP;
	}
	return 0;
}
