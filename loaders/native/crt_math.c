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

#define M(name) { "msvcrt.dll", #name, (void *)(s_##name) }

const struct shim crt_math_shims[] = {
	M(acos), M(asin), M(atan), M(atan2), M(cos), M(sin), M(tan), M(cosh), M(sinh), M(tanh), M(exp),
	M(log), M(log10), M(pow), M(sqrt), M(fabs), M(floor), M(ceil), M(fmod), M(ldexp), M(frexp), M(modf),
};

const size_t crt_math_shim_count = sizeof(crt_math_shims) / sizeof(crt_math_shims[0]);
