// SPDX-License-Identifier: MIT
/*
 * Feature detection by the architecture's own means (cpuid + xgetbv on
 * x86-64, the kernel's hwcaps on aarch64) for every feature of the shared
 * table, cerebro/cpu_features.h, named as LLVM names them.
 */
#include "cpu.h"

#include <string.h>

#include <cerebro/cpu_features.h>

struct feature {
	const char *name;
	bool present;
};

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static const struct cpuid_feature {
	const char *name;
	unsigned int leaf, subleaf, reg, bit;
	unsigned long long xcr0;	/* state the OS must save */
} table[] = {
#define CPUID_ROW(name, leaf, subleaf, reg, bit, xcr0, kernel) \
	{ name, leaf, subleaf, CEREBRO_CPUID_##reg, bit, CEREBRO_XCR0_##xcr0 },
	CEREBRO_X86_FEATURES(CPUID_ROW)
#undef CPUID_ROW
};

#define FEATURE_COUNT (sizeof(table) / sizeof(table[0]))

static unsigned long long xgetbv0(void)
{
	unsigned int lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}

static void detect(struct feature *f)
{
	unsigned int r[4] = { 0 }, c1 = 0, unused;
	unsigned long long xcr0 = 0;
	bool listed;
	size_t i;

	__get_cpuid(1, &unused, &unused, &c1, &unused);
	if (c1 & (1u << 27))	/* OSXSAVE: the OS saves extended state */
		xcr0 = xgetbv0();
	for (i = 0; i < FEATURE_COUNT; i++) {
		/* 0 when the CPU has no such leaf */
		listed = __get_cpuid_count(table[i].leaf, table[i].subleaf, &r[0], &r[1], &r[2], &r[3]) &&
			 (r[table[i].reg] >> table[i].bit & 1);
		f[i] = (struct feature){ table[i].name, listed && (xcr0 & table[i].xcr0) == table[i].xcr0 };
	}
}

#elif defined(__aarch64__)
#include <sys/auxv.h>

static const struct hwcap_feature {
	const char *name;
	unsigned long auxv, mask;
} table[] = {
#define HWCAP_ROW(name, auxv, cap) { name, AT_##auxv, auxv##_##cap },
	CEREBRO_ARM64_FEATURES(HWCAP_ROW)
#undef HWCAP_ROW
};

#define FEATURE_COUNT (sizeof(table) / sizeof(table[0]))

static void detect(struct feature *f)
{
	size_t i;

	for (i = 0; i < FEATURE_COUNT; i++)
		f[i] = (struct feature){ table[i].name, getauxval(table[i].auxv) & table[i].mask };
}
#endif

/* The feature called @name (@len bytes), or NULL. */
static const struct feature *lookup(const struct feature *f, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < FEATURE_COUNT; i++) {
		if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0)
			return &f[i];
	}
	return NULL;
}

int cbx_cpu_check(const char *features, struct cbx_error *err)
{
	struct feature f[FEATURE_COUNT];
	const struct feature *found;
	const char *p = features;
	size_t len;

	detect(f);
	while (*p) {
		len = strcspn(p, ",");
		if (len > 1 && p[0] == '+') {
			found = lookup(f, p + 1, len - 1);
			if (!found)
				return cbx_fail(err, CBX_ECPU, "the model needs CPU feature '%.*s', which this runtime cannot check",
						(int)(len - 1), p + 1);
			if (!found->present)
				return cbx_fail(err, CBX_ECPU, "this CPU lacks '%s', which the model was compiled for (features %s)",
						found->name, features);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return CBX_OK;
}

void cbx_cpu_describe(char *out, size_t len)
{
	struct feature f[FEATURE_COUNT];
	size_t used = 0, i;
	int n;

	detect(f);
	if (len)
		out[0] = '\0';
	for (i = 0; i < FEATURE_COUNT; i++) {
		if (!f[i].present)
			continue;
		n = snprintf(out + used, len - used, "%s+%s", used ? "," : "", f[i].name);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}
