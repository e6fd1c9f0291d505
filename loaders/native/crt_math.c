// SPDX-License-Identifier: MIT
/*
 * msvcrt's <math.h> functions on doubles. MinGW links most of libm from its own libmingwex, but
 * takes some (acos, asin, tan, log10 in Lua) from msvcrt.dll; glibc's answers are the Linux
 * build's, so a program computes the same digits under the loader as natively.
 */
#include <math.h>

#include "shims.h"

#define UNARY(name) static WINAPI double s_##name(double x) { return name(x); }
#define BINARY(name) static WINAPI double s_##name(double x, double y) { return name(x, y); }

UNARY(acos) UNARY(asin) UNARY(atan) UNARY(cos) UNARY(sin) UNARY(tan) UNARY(cosh) UNARY(sinh) UNARY(tanh)
UNARY(exp) UNARY(log) UNARY(log10) UNARY(sqrt) UNARY(fabs) UNARY(floor) UNARY(ceil)
BINARY(atan2) BINARY(pow) BINARY(fmod)

static WINAPI double s_ldexp(double x, int e) { return ldexp(x, e); }
static WINAPI double s_frexp(double x, int *e) { return frexp(x, e); }
static WINAPI double s_modf(double x, double *whole) { return modf(x, whole); }

#define MATH(name) M(#name, s_##name)

const struct shim crt_math_shims[] = {
	MATH(acos), MATH(asin), MATH(atan), MATH(atan2), MATH(cos), MATH(sin), MATH(tan), MATH(cosh), MATH(sinh),
	MATH(tanh), MATH(exp), MATH(log), MATH(log10), MATH(pow), MATH(sqrt), MATH(fabs), MATH(floor), MATH(ceil),
	MATH(fmod), MATH(ldexp), MATH(frexp), MATH(modf),
};

SHIM_TABLE_SIZE(crt_math);
