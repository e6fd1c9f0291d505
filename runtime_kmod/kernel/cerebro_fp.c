// SPDX-License-Identifier: MIT
/*
 * The only C in cerebro.ko that touches floating point: input scale/offset
 * and the post-processing of output 0. Built with SSE enabled (see Kbuild);
 * every function here must run between kernel_fpu_begin()/kernel_fpu_end().
 * No libm in the kernel, so exp is a short polynomial.
 */
#include <linux/types.h>

#include "cerebro_internal.h"

union f32_bits {
	float f;
	u32 u;
};

static float from_bits(u32 bits)
{
	union f32_bits v = { .u = bits };

	return v.f;
}

static u32 to_bits(float f)
{
	union f32_bits v = { .f = f };

	return v.u;
}

u32 cerebro_fp_decimal(s64 mantissa, int exp10)
{
	double value = (double)mantissa;
	double power = 1.0;
	int i;

	for (i = 0; i < exp10 || i < -exp10; i++)
		power *= 10.0;
	value = exp10 >= 0 ? value * power : value / power;
	return to_bits((float)value);
}

void cerebro_fp_affine(float *x, u64 n, u32 scale_bits, u32 offset_bits)
{
	float scale = from_bits(scale_bits);
	float offset = from_bits(offset_bits);
	u64 i;

	for (i = 0; i < n; i++)
		x[i] = x[i] * scale + offset;
}

/* exp(x) for x <= 0 to about 2 ulp: x = k ln2 + r, exp(r) by Taylor to r^7. */
static float exp_nonpositive(float x)
{
	const float ln2 = 0.6931471805599453f;
	union f32_bits scale;
	float r, p;
	int k;

	if (x < -87.0f)
		return 0.0f;
	k = (int)(x / ln2 - 0.5f);
	r = x - (float)k * ln2;
	p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 +
	    r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
	scale.u = (u32)(k + 127) << 23;
	return p * scale.f;
}

void cerebro_fp_softmax(float *x, u64 rows, u64 n)
{
	u64 row, i;

	for (row = 0; row < rows; row++) {
		float *v = x + row * n;
		float max = v[0];
		float sum = 0.0f;

		for (i = 1; i < n; i++)
			max = v[i] > max ? v[i] : max;
		for (i = 0; i < n; i++) {
			v[i] = exp_nonpositive(v[i] - max);
			sum += v[i];
		}
		for (i = 0; i < n; i++)
			v[i] /= sum;
	}
}

void cerebro_fp_argmax(const float *x, u64 rows, u64 n, s32 *out)
{
	u64 row, i;

	for (row = 0; row < rows; row++) {
		const float *v = x + row * n;
		u64 best = 0;

		for (i = 1; i < n; i++) {
			if (v[i] > v[best])
				best = i;
		}
		out[row] = (s32)best;
	}
}

static bool already_taken(const s32 *taken, u32 count, u64 index)
{
	u32 j;

	for (j = 0; j < count; j++) {
		if ((u64)taken[j] == index)
			return true;
	}
	return false;
}

/* k repeated selections; ties go to the lower index (a stable sort). */
void cerebro_fp_topk(const float *x, u64 rows, u64 n, u32 k, s32 *out)
{
	u64 row, i;
	u32 j;

	for (row = 0; row < rows; row++) {
		const float *v = x + row * n;
		s32 *picked = out + row * k;

		for (j = 0; j < k; j++) {
			s64 best = -1;

			for (i = 0; i < n; i++) {
				if (already_taken(picked, j, i))
					continue;
				if (best < 0 || v[i] > v[best])
					best = i;
			}
			picked[j] = (s32)best;
		}
	}
}
