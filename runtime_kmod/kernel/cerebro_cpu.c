// SPDX-License-Identifier: MIT
/*
 * A model compiled for CPU features this machine lacks would fault on its
 * first vector instruction, inside the kernel. The meta records the LLVM
 * features the code was built with; registration refuses the model unless
 * the boot CPU has every one of them. The features it knows are the rows of
 * cerebro/cpu_features.h, the table user space and the compiler use too.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <cerebro/cpu_features.h>

#include "cerebro_internal.h"

#ifdef CONFIG_X86
#include <asm/cpufeature.h>

#define CPU_ROW(name, leaf, subleaf, reg, bit, xcr0, kernel) { name, X86_FEATURE_##kernel },
#define CPU_FEATURES CEREBRO_X86_FEATURES(CPU_ROW)
#define cerebro_cpu_has(feature) boot_cpu_has(feature)

/*
 * The kernel numbers a feature by the cpuid word it comes from (enum
 * cpuid_leafs) times 32 plus its bit there. Each row's cpuid position,
 * which user space reads, must be its X86_FEATURE_*'s: the build fails
 * on a row where the two columns name different features.
 */
#define CPUID_WORD(leaf, subleaf, reg)						\
	((leaf) == 0x1 && (reg) == CEREBRO_CPUID_EDX ? CPUID_1_EDX :		\
	 (leaf) == 0x1 && (reg) == CEREBRO_CPUID_ECX ? CPUID_1_ECX :		\
	 (leaf) == 0x7 && (subleaf) == 0 && (reg) == CEREBRO_CPUID_EBX ? CPUID_7_0_EBX : \
	 (leaf) == 0x7 && (subleaf) == 0 && (reg) == CEREBRO_CPUID_ECX ? CPUID_7_ECX : \
	 (leaf) == 0x7 && (subleaf) == 1 && (reg) == CEREBRO_CPUID_EAX ? CPUID_7_1_EAX : \
	 (leaf) == 0x80000001 && (reg) == CEREBRO_CPUID_ECX ? CPUID_8000_0001_ECX : -1)
#define CPU_ROW_AGREES(name, leaf, subleaf, reg, bit, xcr0, kernel)		\
	static_assert(X86_FEATURE_##kernel ==					\
		      CPUID_WORD(leaf, subleaf, CEREBRO_CPUID_##reg) * 32 + (bit),	\
		      "cerebro/cpu_features.h: the cpuid bit of " name " is not X86_FEATURE_" #kernel);
CEREBRO_X86_FEATURES(CPU_ROW_AGREES)
#elif defined(CONFIG_ARM64)
#include <asm/cpufeature.h>

#define CPU_ROW(name, auxv, cap) { name, KERNEL_HWCAP_##cap },
#define CPU_FEATURES CEREBRO_ARM64_FEATURES(CPU_ROW)
#define cerebro_cpu_has(feature) cpu_have_feature(feature)
#else
#error "cerebro_cpu.c knows the CPU features of x86-64 and arm64 only"
#endif

/* The shared table (cerebro/cpu_features.h) in this kernel's numbering. */
static const struct {
	const char *name;	/* LLVM spelling */
	unsigned int feature;	/* X86_FEATURE_* or KERNEL_HWCAP_* */
} cpu_features[] = { CPU_FEATURES };

/* 1 if the CPU has it, 0 if not, -1 if the name is unknown. */
static int cpu_has_named(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cpu_features); i++) {
		if (strcmp(cpu_features[i].name, name) == 0)
			return cerebro_cpu_has(cpu_features[i].feature) ? 1 : 0;
	}
	return -1;
}

int cerebro_cpu_check(const char *features, char *why, size_t why_len)
{
	char list[sizeof(((struct cbx_meta *)0)->features)];
	char *rest = list, *item;
	int has;

	strscpy(list, features, sizeof(list));
	while ((item = strsep(&rest, ","))) {
		if (item[0] != '+')
			continue;	/* "-feature" or empty: nothing required */
		has = cpu_has_named(item + 1);
		if (has == 1)
			continue;
		snprintf(why, why_len, has == 0 ? "needs CPU feature %s, which this CPU lacks" :
			 "needs CPU feature %s, which the kernel runtime does not know", item + 1);
		return -EOPNOTSUPP;
	}
	return 0;
}
