// SPDX-License-Identifier: MIT
/*
 * Feature detection by the architecture's own means (cpuid + xgetbv on
 * x86-64, the kernel's hwcaps on aarch64), named as LLVM names them.
 */
#include "cpu.h"

#include <string.h>

struct feature {
	const char *name;
	bool present;
};

#if defined(__x86_64__)
#include <cpuid.h>

enum { FEATURE_COUNT = 23 };

static unsigned long long xgetbv0(void)
{
	unsigned int lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}

static void detect(struct feature *f)
{
	unsigned int c1 = 0, d1 = 0, b7 = 0, c7 = 0, a71 = 0, c81 = 0;
	unsigned int a, b, c, d;	/* registers read and ignored */
	unsigned long long xcr0 = 0;
	bool avx_os, avx512_os;

	__get_cpuid(1, &a, &b, &c1, &d1);
	if (__get_cpuid_max(0, NULL) >= 7) {
		__cpuid_count(7, 0, a, b7, c7, d);
		__cpuid_count(7, 1, a71, b, c, d);
	}
	if (__get_cpuid_max(0x80000000, NULL) >= 0x80000001)
		__get_cpuid(0x80000001, &a, &b, &c81, &d);
	if (c1 & (1u << 27))	/* OSXSAVE: the OS saves extended state */
		xcr0 = xgetbv0();
	avx_os = (xcr0 & 0x6) == 0x6;
	avx512_os = avx_os && (xcr0 & 0xe0) == 0xe0;

	f[0] = (struct feature){ "sse2", d1 & (1u << 26) };
	f[1] = (struct feature){ "sse3", c1 & (1u << 0) };
	f[2] = (struct feature){ "ssse3", c1 & (1u << 9) };
	f[3] = (struct feature){ "sse4.1", c1 & (1u << 19) };
	f[4] = (struct feature){ "sse4.2", c1 & (1u << 20) };
	f[5] = (struct feature){ "popcnt", c1 & (1u << 23) };
	f[6] = (struct feature){ "cx16", c1 & (1u << 13) };
	f[7] = (struct feature){ "movbe", c1 & (1u << 22) };
	f[8] = (struct feature){ "lzcnt", c81 & (1u << 5) };
	f[9] = (struct feature){ "bmi", b7 & (1u << 3) };
	f[10] = (struct feature){ "bmi2", b7 & (1u << 8) };
	f[11] = (struct feature){ "avx", avx_os && (c1 & (1u << 28)) };
	f[12] = (struct feature){ "avx2", avx_os && (b7 & (1u << 5)) };
	f[13] = (struct feature){ "fma", avx_os && (c1 & (1u << 12)) };
	f[14] = (struct feature){ "f16c", avx_os && (c1 & (1u << 29)) };
	f[15] = (struct feature){ "avxvnni", avx_os && (a71 & (1u << 4)) };
	f[16] = (struct feature){ "avx512f", avx512_os && (b7 & (1u << 16)) };
	f[17] = (struct feature){ "avx512dq", avx512_os && (b7 & (1u << 17)) };
	f[18] = (struct feature){ "avx512cd", avx512_os && (b7 & (1u << 28)) };
	f[19] = (struct feature){ "avx512bw", avx512_os && (b7 & (1u << 30)) };
	f[20] = (struct feature){ "avx512vl", avx512_os && (b7 & (1u << 31)) };
	f[21] = (struct feature){ "avx512vnni", avx512_os && (c7 & (1u << 11)) };
	f[22] = (struct feature){ "avx512bf16", avx512_os && (a71 & (1u << 5)) };
}

#elif defined(__aarch64__)
#include <sys/auxv.h>

enum { FEATURE_COUNT = 8 };

static void detect(struct feature *f)
{
	unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);

	f[0] = (struct feature){ "fp-armv8", hw & (1ul << 0) };		/* HWCAP_FP */
	f[1] = (struct feature){ "neon", hw & (1ul << 1) };		/* HWCAP_ASIMD */
	f[2] = (struct feature){ "fullfp16", hw & (1ul << 10) };	/* HWCAP_ASIMDHP */
	f[3] = (struct feature){ "dotprod", hw & (1ul << 20) };		/* HWCAP_ASIMDDP */
	f[4] = (struct feature){ "sve", hw & (1ul << 22) };		/* HWCAP_SVE */
	f[5] = (struct feature){ "sve2", hw2 & (1ul << 1) };		/* HWCAP2_SVE2 */
	f[6] = (struct feature){ "i8mm", hw2 & (1ul << 13) };		/* HWCAP2_I8MM */
	f[7] = (struct feature){ "bf16", hw2 & (1ul << 14) };		/* HWCAP2_BF16 */
}
#endif

/* The feature called @name (@len bytes), or NULL. */
static const struct feature *lookup(const struct feature *f, const char *name, size_t len)
{
	int i;

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
	size_t used = 0;
	int i, n;

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
