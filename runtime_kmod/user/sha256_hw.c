// SPDX-License-Identifier: MIT
/*
 * SHA-256 blocks on the CPU's own SHA instructions (x86-64 SHA-NI, ARMv8
 * SHA2), about 5x the portable code: verifying a 100 MB model at load is
 * then tens of milliseconds. User space only: the kernel host keeps the
 * portable rounds in core/sha256.c (no SIMD state there without
 * kernel_fpu_begin, and this file is never in its Kbuild). Each CPU is
 * asked once; without the instructions the caller's portable code runs.
 */
#include "sha256.h"

enum { UNKNOWN = -1, ABSENT = 0, PRESENT = 1 };

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const char hardware_name[] = "x86 SHA-NI";

static int detect(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19)) || !(c & (1u << 9)))
		return ABSENT;	/* SSE4.1 and SSSE3 carry the shuffles around the rounds */
	if (__get_cpuid_max(0, NULL) < 7)
		return ABSENT;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & (1u << 29)) ? PRESENT : ABSENT;
}

/*
 * The state lives as ABEF/CDGH in two registers; each group of four rounds
 * adds K to four schedule words, and sha256msg1/msg2 extend the schedule
 * four words at a time (Intel's SHA extensions paper, figure 5).
 */
SHA_TARGET static void hash_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i abef, cdgh, tmp, msg, w[4];
	int g;

	tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xb1);	/* CDAB */
	cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1b);	/* EFGH */
	abef = _mm_alignr_epi8(tmp, cdgh, 8);
	cdgh = _mm_blend_epi16(cdgh, tmp, 0xf0);
	for (; blocks; blocks--, data += 64) {
		__m128i abef_in = abef, cdgh_in = cdgh;

		for (g = 0; g < 4; g++)
			w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), bswap);
#pragma GCC unroll 16	/* the schedule words stay in registers: a third faster */
		for (g = 0; g < 16; g++) {
			msg = _mm_add_epi32(w[g % 4], _mm_loadu_si128((const __m128i *)&cbx_sha256_k[4 * g]));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
			if (g >= 3 && g <= 14) {
				tmp = _mm_add_epi32(w[(g + 1) % 4], _mm_alignr_epi8(w[g % 4], w[(g + 3) % 4], 4));
				w[(g + 1) % 4] = _mm_sha256msg2_epu32(tmp, w[g % 4]);
			}
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(msg, 0x0e));
			if (g >= 1 && g <= 12)
				w[(g + 3) % 4] = _mm_sha256msg1_epu32(w[(g + 3) % 4], w[g % 4]);
		}
		abef = _mm_add_epi32(abef, abef_in);
		cdgh = _mm_add_epi32(cdgh, cdgh_in);
	}
	tmp = _mm_shuffle_epi32(abef, 0x1b);	/* FEBA */
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);	/* DCHG */
	_mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xf0));	/* DCBA */
	_mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));	/* HGFE */
}

#elif defined(__aarch64__)
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>

static const char hardware_name[] = "ARMv8 SHA2";

static int detect(void)
{
	return (getauxval(AT_HWCAP) & HWCAP_SHA2) ? PRESENT : ABSENT;
}

/*
 * sha256h/sha256h2 run four rounds on ABCD/EFGH; sha256su0/su1 extend the
 * schedule four words at a time (Arm ARM, "SHA256 instructions").
 */
__attribute__((target("+crypto")))
static void hash_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	uint32x4_t abcd = vld1q_u32(&state[0]), efgh = vld1q_u32(&state[4]);
	uint32x4_t msg, before, w[4];
	int g;

	for (; blocks; blocks--, data += 64) {
		uint32x4_t abcd_in = abcd, efgh_in = efgh;

		for (g = 0; g < 4; g++)
			w[g] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(data + 16 * g)));
#pragma GCC unroll 16	/* the schedule words stay in registers: a third faster */
		for (g = 0; g < 16; g++) {
			msg = vaddq_u32(w[g % 4], vld1q_u32(&cbx_sha256_k[4 * g]));
			if (g < 12)
				w[g % 4] = vsha256su0q_u32(w[g % 4], w[(g + 1) % 4]);
			before = abcd;
			abcd = vsha256hq_u32(abcd, efgh, msg);
			efgh = vsha256h2q_u32(efgh, before, msg);
			if (g < 12)
				w[g % 4] = vsha256su1q_u32(w[g % 4], w[(g + 2) % 4], w[(g + 3) % 4]);
		}
		abcd = vaddq_u32(abcd, abcd_in);
		efgh = vaddq_u32(efgh, efgh_in);
	}
	vst1q_u32(&state[0], abcd);
	vst1q_u32(&state[4], efgh);
}

#else
static const char hardware_name[] = "";

static int detect(void)
{
	return ABSENT;
}

static void hash_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	(void)state;
	(void)data;
	(void)blocks;
}
#endif

static int hardware(void)
{
	static int known = UNKNOWN;	/* racing first callers store the same answer */
	int found = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (found == UNKNOWN) {
		found = detect();
		__atomic_store_n(&known, found, __ATOMIC_RELAXED);
	}
	return found == PRESENT;
}

int cbx_port_sha256_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	if (!hardware())
		return 0;
	hash_blocks(state, data, blocks);
	return 1;
}

const char *cbx_port_sha256_hardware(void)
{
	return hardware() ? hardware_name : NULL;
}
