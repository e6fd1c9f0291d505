// SPDX-License-Identifier: MIT
/*
 * The only C in cerebro.ko that touches floating point: input scale/offset
 * and the softmax of output 0 (argmax and top-k compare f32 bits as
 * integers, in cerebro_post.c). Built with SSE enabled (see Kbuild);
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

union f64_bits {
	double d;
	u64 u;
};

/*
 * Softmax in pieces (cerebro_post.c cuts rows into bounded FPU sections):
 * v[i] = exp(v[i] - max) for the piece, returning @sum_bits plus their sum.
 * The sum is kept in double (a float sum of 2^20 terms drifts by 1e-3) and
 * crosses sections as its bits.
 */
u64 cerebro_fp_exp_sum(float *v, u64 n, u32 max_bits, u64 sum_bits)
{
	union f64_bits sum = { .u = sum_bits };
	float max = from_bits(max_bits);
	u64 i;

	for (i = 0; i < n; i++) {
		v[i] = exp_nonpositive(v[i] - max);
		sum.d += v[i];
	}
	return sum.u;
}

void cerebro_fp_divide(float *v, u64 n, u64 divisor_bits)
{
	union f64_bits divisor = { .u = divisor_bits };
	u64 i;

	for (i = 0; i < n; i++)
		v[i] = (float)(v[i] / divisor.d);
}
