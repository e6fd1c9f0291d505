"""Transcendental functions as branch-free polynomial code (no libm: generated code may call nothing).

Every function takes an IRBuilder and one scalar float/double value and returns a
value of the same type. Control flow is only `select`, so the loops around these
vectorise. Approach per function: range reduction to a small interval, a
polynomial there (Taylor series with exact coefficients for log/sin/cos and f64
exp, Chebyshev interpolants for erf and the f32 exp: Clenshaw's recurrence in f64,
Horner on monomial coefficients in f32,
Estrin for logistic's exp), then the IEEE special cases (inf, nan,
zeros, overflow to inf, underflow to 0) by select, or by a clamp the arithmetic
turns into the right answer.
f32 sin/cos/pow are computed in f64 and rounded once, which keeps them within
about an ulp. The f32 exp, expm1, tanh and erf have forms of their own (`_by_type`)
that run at vector speed in matmul epilogues and softmax: a single path each, at most
one division, no f64, few selects (exp: shifter rounding, clamp instead of special
cases; tanh and erf: Eigen's/XLA's rationals, no exp).

Measured accuracy (tests/test_codegen_ops.py and tests/test_codegen_mathfn.py
sweeps; f32): exp, log, log1p, expm1, tanh, logistic, erf within 2e-6 relative
(at most 5 ulp) over their whole range; sin/cos
within half an ulp of 1 absolute for |x| < 1e14 and NaN from 1e15 (Cody-Waite
reduction, no Payne-Hanek); pow within an ulp. f64: a few 1e-15 relative,
pow 5 ulp. fmod (the IR's float rem) is exact.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from fractions import Fraction
from functools import cache

import numpy as np
from llvmlite import ir
from numpy.polynomial import chebyshev

from cerebro.compiler.codegen.llvm_types import call_intrinsic

F32, F64 = ir.FloatType(), ir.DoubleType()


def _element(ty: ir.Type) -> ir.Type:
    return ty.element if isinstance(ty, ir.VectorType) else ty


class _Ops:
    """Arithmetic on one float type with constants promoted, so formulas read like math."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type) -> None:
        self.b, self.ty = b, ty
        self.is64 = isinstance(_element(ty), ir.DoubleType)
        self.int = ir.IntType(64 if self.is64 else 32)
        if isinstance(ty, ir.VectorType):  # a vector of several registers (codegen/epilogue.py apply_rows_wide)
            self.int = ir.VectorType(self.int, ty.count)
        self.mant = 52 if self.is64 else 23
        self.bias = 1023 if self.is64 else 127

    def c(self, v: float | ir.Value) -> ir.Value:
        return v if isinstance(v, ir.Value) else ir.Constant(self.ty, float(v))

    def ci(self, v: int) -> ir.Constant:
        return ir.Constant(self.int, v)

    def add(self, x, y):
        return self.b.fadd(self.c(x), self.c(y))

    def sub(self, x, y):
        return self.b.fsub(self.c(x), self.c(y))

    def mul(self, x, y):
        return self.b.fmul(self.c(x), self.c(y))

    def div(self, x, y):
        return self.b.fdiv(self.c(x), self.c(y))

    def madd(self, x, y, z):
        """x*y + z, fused where the target has FMA."""
        return self.intrinsic("fmuladd", x, y, z)

    def intrinsic(self, name: str, *args):
        return call_intrinsic(self.b, f"llvm.{name}", *[self.c(a) for a in args])

    def cmp(self, op: str, x, y):
        return self.b.fcmp_ordered(op, self.c(x), self.c(y))

    def sel(self, cond, x, y):
        return self.b.select(cond, self.c(x), self.c(y))

    def clamp(self, x, lo: float, hi: float):
        """x limited to [lo, hi], NaN kept: each select compares its own input, so the pair becomes
        one max and one min instruction."""
        low = self.sel(self.cmp("<", x, lo), lo, x)
        return self.sel(self.cmp(">", low, hi), hi, low)

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def bits(self, x):
        return self.b.bitcast(x, self.int)

    def from_bits(self, i):
        return self.b.bitcast(i, self.ty)

    def pow2(self, n):
        """2**n for an integer n inside the normal exponent range."""
        return self.from_bits(self.b.shl(self.b.add(n, self.ci(self.bias)), self.ci(self.mant)))

    def horner(self, x, coeffs: list[float]):
        """coeffs[0] + coeffs[1]*x + ... by Horner's rule."""
        acc = self.c(coeffs[-1])
        for coeff in reversed(coeffs[:-1]):
            acc = self.madd(acc, x, coeff)
        return acc

    def estrin(self, x, coeffs: list[float]):
        """coeffs[0] + coeffs[1]*x + ... by Estrin's scheme: pairs c0 + c1*x combined by x**2, x**4, ...
        (log2(degree) dependent steps instead of degree: the chain is what limits a vector loop)."""
        terms = [self.madd(x, hi, lo) if hi is not None else self.c(lo)
                 for lo, hi in zip(coeffs[::2], [*coeffs[1::2], None])]
        power = x
        while len(terms) > 1:
            power = self.mul(power, power)
            terms = [self.madd(power, hi, lo) if hi is not None else lo
                     for lo, hi in zip(terms[::2], [*terms[1::2], None])]
        return terms[0]

    def clenshaw(self, t, coeffs: list[float]):
        """sum coeffs[k] * T_k(t) for t in [-1, 1] (stable at any degree)."""
        b1, b2 = self.c(0.0), self.c(0.0)
        two_t = self.mul(t, 2.0)
        for coeff in reversed(coeffs[1:]):
            b1, b2 = self.sub(self.madd(two_t, b1, coeff), b2), b1
        return self.sub(self.madd(t, b1, coeffs[0]), b2)


def _taylor_exp(degree: int) -> list[float]:
    return [1.0 / math.factorial(k) for k in range(degree + 1)]


_SHIFTER = 12582912.0  # 1.5 * 2**23: x + _SHIFTER rounds x to an integer held in the low mantissa bits


def _exp_32_reduced(f: _Ops, safe: ir.Value, offset: int = 0) -> tuple[ir.Value, ir.Value]:
    """(x/ln2 + _SHIFTER + offset rounded, r) with x = n*ln2 + r, |r| <= ln2/2 (Cody-Waite, two parts):
    the shifted value's low mantissa bits are n + offset (a small offset changes no rounding but
    ties, and x/ln2 in f32 arithmetic lands on none)."""
    shifter = _SHIFTER + offset
    shifted = f.madd(safe, 1.4426950408889634, shifter)
    n = f.sub(shifted, shifter)
    r = f.madd(n, -0.693145751953125, safe)
    return shifted, f.madd(n, -1.428606765330187045e-06, r)


# modules whose target scales by a power of two in one instruction (AVX-512's vscalefps: llvm.ldexp); elsewhere
# llvm.ldexp becomes a call to libm's ldexpf, which generated code may not make
_SCALES: weakref.WeakKeyDictionary[ir.Module, bool] = weakref.WeakKeyDictionary()


def use_target(module: ir.Module, target: object) -> None:
    """Let the functions emitted into module use target's instructions (codegen/module.py calls this once):
    on AVX-512, f32 exp applies 2**n with vscalefps (3 instructions instead of 9; softmax 1.1-1.2x)."""
    _SCALES[module] = getattr(target, "is_x86", False) and "+avx512f" in getattr(target, "features", "").split(",")


def _exp_32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x for f32 with no select but the clamp: n = round(x/ln2) by the shifter, exp(r) = 1 + r +
    r*r*Q(r) (Q: Chebyshev fit, 1e-8 relative), 2**n applied in two halves (subnormal results). The
    clamp to [-120, 89] makes overflow inf and underflow 0 by arithmetic, and NaN passes through. Where the
    target has it (use_target), one ldexp applies 2**n instead (the same bits)."""
    f = _Ops(b, x.type)
    shifted, r = _exp_32_reduced(f, f.clamp(x, -120.0, 89.0))
    p = f.horner(r, [1.0, 1.0, *_exp_tail()])
    ni = b.sub(f.bits(shifted), f.bits(f.c(_SHIFTER)))
    if _SCALES.get(b.module):
        return _ldexp(b, p, ni)
    n1 = b.ashr(ni, f.ci(1))
    return f.mul(f.mul(p, f.pow2(n1)), f.pow2(b.sub(ni, n1)))


def _ldexp(b: ir.IRBuilder, x: ir.Value, n: ir.Value) -> ir.Value:
    """x * 2**n rounded once: llvm.ldexp, one vscalefps (use_target). The two halves' product rounds once
    too (the first is exact: |n1| <= 87), so the bits are the same, subnormal results and inf included."""
    name = "llvm.ldexp." + "".join(f"v{t.count}{t.element}" if isinstance(t, ir.VectorType) else str(t)
                                   for t in (x.type, n.type))
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(x.type, [x.type, n.type]), name=name)
    return b.call(fn, [x, n])


_NOT_TINY = 2.0**-30  # no smaller |r| for Estrin's scheme: r**4 stays normal; e**-2**-30 rounds to 1 in f32
_LIFT = 64  # 2**n * 2**_LIFT is normal for every n of e**[-120, 0]


def _exp_negative_32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x for f32 x <= 0 (logistic's e**-|x|) in fewer instructions than _exp_32 (they, not the
    divider, bound a SiLU epilogue: a reciprocal estimate and Newton step measured slower; the bits
    are those of the two-halves form it replaced, checked over every f32 in [-100, 0]):
    - the clamp's upper bound -2**-30 (e**x rounds to 1 above it) keeps |r| >= 2**-30, so the
      polynomial takes Estrin's scheme (half the dependent steps of Horner's) without r**2 and r**4
      going subnormal (a microcode assist per vector; activations of 1e-20 are common);
    - 2**n is applied as p * 2**(n + 64), exact, then * 2**-64, which rounds once, as _exp_32's
      second half does (subnormal results); the shifter carries the 64 and the exponent bias, so
      its bits shifted left by 23 are 2**(n + 64): 3 instructions instead of 9. (Adding those bits
      to p's as integers would save a multiply but turns NaN into numbers: NaN's payload lands in
      the exponent.)"""
    f = _Ops(b, x.type)
    shifted, r = _exp_32_reduced(f, f.clamp(x, -120.0, -_NOT_TINY), _LIFT + f.bias)
    p = f.estrin(r, [1.0, 1.0, *_exp_tail()])
    return f.mul(f.mul(p, f.from_bits(b.shl(f.bits(shifted), f.ci(f.mant)))), 2.0**-_LIFT)


@cache
def _exp_tail() -> tuple[float, ...]:
    """(e**r - 1 - r) / r**2 on |r| <= ln2/2 as a degree-4 polynomial (monomial coefficients)."""
    half = math.log(2.0) / 2 * 1.001

    def tail(r: float) -> float:
        return 0.5 + r / 6 + r * r / 24 + r ** 3 / 120 if abs(r) < 1e-4 else (math.expm1(r) - r) / (r * r)

    fit = chebyshev.Chebyshev.interpolate(np.vectorize(tail), 4, domain=[-half, half])
    return tuple(float(c) for c in fit.convert(kind=np.polynomial.Polynomial).coef)


def _exp_64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x: x = n*ln2 + r, |r| <= ln2/2; exp(r) by Taylor; 2**n applied in two halves (subnormals)."""
    f = _Ops(b, x.type)
    hi, lo, degree = 709.782712893384, -745.1332191019412, 13
    ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    safe = f.sel(f.cmp(">", x, hi), hi, f.sel(f.cmp("<", x, lo), lo, x))
    safe = f.sel(f.isnan(x), 0.0, safe)
    n = f.intrinsic("roundeven", f.mul(safe, 1.4426950408889634))
    r = f.madd(n, -ln2_hi, safe)
    r = f.madd(n, -ln2_lo, r)
    p = f.horner(r, _taylor_exp(degree))
    ni = b.fptosi(n, f.int)
    n1 = b.ashr(ni, f.ci(1))
    n2 = b.sub(ni, n1)
    result = f.mul(f.mul(p, f.pow2(n1)), f.pow2(n2))
    result = f.sel(f.cmp(">", x, hi), math.inf, result)
    result = f.sel(f.cmp("<", x, lo), 0.0, result)
    return f.sel(f.isnan(x), x, result)


def _log_reduce(f: _Ops, x: ir.Value) -> tuple[ir.Value, ...]:
    """x = 2**e * (1+g), sqrt(1/2) <= 1+g < sqrt(2); returns (e, g, s, R(s*s), ln2_hi, ln2_lo) with
    log(1+g) = g - g*g/2 + s*(g*g/2 + R), s = g/(2+g) (fdlibm's form). x finite and > 0."""
    b = f.b
    smallest_normal = 2.2250738585072014e-308 if f.is64 else 1.1754943508222875e-38
    boost = 54 if f.is64 else 25
    sub = f.cmp("<", x, smallest_normal)
    xs = f.sel(sub, f.mul(x, float(2**boost)), x)
    bits = f.bits(xs)
    e = b.sub(b.lshr(bits, f.ci(f.mant)), f.ci(f.bias))
    e = b.select(sub, b.sub(e, f.ci(boost)), e)
    m = f.from_bits(b.or_(b.and_(bits, f.ci((1 << f.mant) - 1)), f.ci(f.bias << f.mant)))
    big = f.cmp(">", m, math.sqrt(2.0))
    m = f.sel(big, f.mul(m, 0.5), m)
    e = b.select(big, b.add(e, f.ci(1)), e)
    g = f.sub(m, 1.0)
    s = f.div(g, f.add(g, 2.0))
    terms = 11 if f.is64 else 5
    r = f.horner(f.mul(s, s), [0.0] + [2.0 / (2 * k + 1) for k in range(1, terms + 1)])
    if f.is64:
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # e*ln2_hi is exact
    else:
        ln2_hi, ln2_lo = 0.693359375, -2.12194440e-4
    return b.sitofp(e, f.ty), g, s, r, ln2_hi, ln2_lo


def _log_parts(f: _Ops, x: ir.Value) -> ir.Value:
    """log(x) for finite x > 0 (the special cases are the caller's)."""
    e, g, s, r, ln2_hi, ln2_lo = _log_reduce(f, x)
    hg2 = f.mul(f.mul(g, g), 0.5)
    inner = f.madd(s, f.add(hg2, r), f.mul(e, ln2_lo))
    return f.madd(e, ln2_hi, f.sub(g, f.sub(hg2, inner)))


def _two_sum(f: _Ops, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
    """s + err == x + y exactly (Knuth)."""
    s = f.add(x, y)
    back = f.sub(s, x)
    return s, f.add(f.sub(x, f.sub(s, back)), f.sub(y, back))


def _log_f64_extra(f: _Ops, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log(x) as hi + lo carrying ~2**-60 relative precision (for pow); f64, x finite and > 0."""
    e, g, s, r, ln2_hi, ln2_lo = _log_reduce(f, x)
    square, square_err = two_product(f.b, g, g)
    half, half_err = f.mul(square, 0.5), f.mul(square_err, 0.5)
    hi, lo = _two_sum(f, f.mul(e, ln2_hi), g)
    hi, err = _two_sum(f, hi, f.c(f.b.fneg(half)))
    lo = f.sub(f.add(lo, err), half_err)
    hi, err = _two_sum(f, hi, f.madd(s, f.add(half, r), f.mul(e, ln2_lo)))
    return hi, f.add(lo, err)


def log(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Natural log: log(0) = -inf, log(x<0) = nan, log(inf) = inf."""
    f = _Ops(b, x.type)
    safe = f.sel(f.cmp(">", x, 0.0), x, 1.0)
    safe = f.sel(f.cmp("==", safe, math.inf), 1.0, safe)
    result = _log_parts(f, safe)
    result = f.sel(f.cmp("==", x, math.inf), math.inf, result)
    result = f.sel(f.cmp("==", x, 0.0), -math.inf, result)
    result = f.sel(f.cmp("<", x, 0.0), math.nan, result)
    return f.sel(f.isnan(x), x, result)


def log1p(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log(1+x) = log(u) * x/(u-1) with u = 1+x rounded: the quotient cancels u's rounding error."""
    f = _Ops(b, x.type)
    u = f.add(x, 1.0)
    denom = f.sub(u, 1.0)
    ratio = f.div(x, f.sel(f.cmp("==", denom, 0.0), 1.0, denom))
    result = f.sel(f.cmp("==", u, 1.0), x, f.mul(log(b, u), ratio))
    return f.sel(f.cmp("==", x, math.inf), math.inf, result)


def _expm1_64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x - 1: Taylor near 0 (no cancellation), exp(x) - 1 elsewhere."""
    f = _Ops(b, x.type)
    near = f.mul(x, f.horner(x, _taylor_exp(15)[1:]))
    small = f.cmp("<", f.intrinsic("fabs", x), 0.34657359027997264)
    return f.sel(small, near, f.sub(exp(b, x), 1.0))


def _expm1_32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """One path: x = n*ln2 + r, expm1(x) = 2**n * expm1(r) + (2**n - 1), both terms exact-ish and
    never cancelling (2**n - 1 is exact for n <= 24); from n = 25 on it is (1 + expm1(r)) * 2**n
    with 2**n applied in two halves, as in exp. Below x = -20 the result rounds to -1."""
    f = _Ops(b, x.type)
    hi = 88.72283935546875
    safe = f.clamp(x, -20.0, hi)
    safe = f.sel(f.isnan(x), 0.0, safe)
    n = f.add(f.intrinsic("roundeven", f.mul(safe, 1.4426950408889634)), 0.0)  # -0 -> +0: r keeps x's zero
    r = f.madd(n, -0.693145751953125, safe)
    r = f.madd(n, -1.428606765330187045e-06, r)
    em1 = f.mul(r, f.horner(r, _taylor_exp(8)[1:]))  # r * (1 + r/2 + ...): keeps -0 and tiny r exact
    ni = b.fptosi(n, f.int)
    n1 = b.ashr(ni, f.ci(1))
    s1, s2 = f.pow2(n1), f.pow2(b.sub(ni, n1))
    scale = f.mul(s1, s2)
    moderate = f.madd(em1, scale, f.sub(scale, 1.0))
    large = f.mul(f.mul(f.add(em1, 1.0), s1), s2)
    result = f.sel(f.cmp(">", n, 24.0), large, f.sel(f.cmp("==", n, 0.0), em1, moderate))
    result = f.sel(f.cmp(">", x, hi), math.inf, result)
    return f.sel(f.isnan(x), x, result)


def _tanh_64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """tanh(|x|) = e/(e+2), e = expm1(2|x|); saturates to +-1; sign copied (tanh(-0) = -0)."""
    f = _Ops(b, x.type)
    ax = f.intrinsic("fabs", x)
    e = expm1(b, f.mul(ax, 2.0))
    t = f.div(e, f.add(e, 2.0))
    t = f.sel(f.cmp(">", ax, 40.0), 1.0, t)
    t = f.intrinsic("copysign", t, x)
    return f.sel(f.isnan(x), x, t)


# Eigen's (and so XLA's) f32 tanh: x*P(x^2)/Q(x^2) on |x| <= 7.905 (beyond, tanh rounds to +-1);
# 1.3e-7 relative in exact arithmetic.
_TANH_CLAMP = 7.90531110763549805
_TANH_P = [4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
           -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16]
_TANH_Q = [4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06]


def _tanh_32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """One rational, one division, no exp, no select but the clamp: x * (P/Q) keeps -0 and
    subnormal x (P/Q ~ 1 there; x*P would underflow). NaN passes through the arithmetic."""
    f = _Ops(b, x.type)
    clamped = f.clamp(x, -_TANH_CLAMP, _TANH_CLAMP)
    z = f.mul(clamped, clamped)
    return f.mul(clamped, f.div(f.horner(z, _TANH_P), f.horner(z, _TANH_Q)))


def logistic(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + e**-x) as 1 / (1 + t), t = e**-|x| (no overflow), and t / (1 + t) for x < 0 (keeps
    tiny results): one division, chosen numerator."""
    f = _Ops(b, x.type)
    negative = b.fneg(f.intrinsic("fabs", x))
    t = _exp_negative_32(b, negative) if _element(x.type) == F32 else exp(b, negative)
    negative_x = b.icmp_signed("<", f.bits(x), f.ci(0))  # the sign bit: a blend takes x itself as its mask
    return f.div(f.sel(negative_x, t, 1.0), f.add(t, 1.0))


def _erfcx(a: float) -> float:
    """erfc(a) * exp(a*a) with a*a carried exactly (reference data for the fits)."""
    square = Fraction(a) ** 2
    hi = float(square)
    return math.erfc(a) * math.exp(hi) * (1.0 + float(square - Fraction(hi)))


def _erf_over_x(z: float) -> float:
    """erf(sqrt z) / sqrt z."""
    return 2.0 / math.sqrt(math.pi) if z == 0 else math.erf(math.sqrt(z)) / math.sqrt(z)


@cache
def _chebyshev(name: str, lo: float, hi: float, degree: int) -> tuple[float, ...]:
    fn = {"erfcx": _erfcx, "erf_over_x": _erf_over_x}[name]
    mapped = np.vectorize(lambda t: fn(lo + (t + 1.0) * (hi - lo) / 2.0))
    return tuple(float(c) for c in chebyshev.chebinterpolate(mapped, degree))


def _on_interval(f: _Ops, v: ir.Value, name: str, lo: float, hi: float, degree: int) -> ir.Value:
    t = f.sub(f.mul(v, 2.0 / (hi - lo)), (hi + lo) / (hi - lo))
    return f.clenshaw(t, list(_chebyshev(name, lo, hi, degree)))


def _erf_64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """erf: x*P(x^2) for |x| < 1, 1 - exp(-x^2)*erfcx(|x|) (piecewise) up to where erf rounds to 1."""
    f = _Ops(b, x.type)
    ax = f.intrinsic("fabs", x)
    z = f.mul(ax, ax)
    near = f.mul(ax, _on_interval(f, f.sel(f.cmp("<", z, 1.0), z, 1.0), "erf_over_x", 0.0, 1.0, 10))
    pieces = [(1.0, 2.5, 18), (2.5, 6.0, 20)]
    clipped = f.sel(f.cmp(">", ax, pieces[-1][1]), pieces[-1][1], f.sel(f.cmp("<", ax, 1.0), 1.0, ax))
    tail = _on_interval(f, clipped, "erfcx", *pieces[0])
    for lo, hi, degree in pieces[1:]:
        tail = f.sel(f.cmp(">=", clipped, lo), _on_interval(f, clipped, "erfcx", lo, hi, degree), tail)
    far = f.sub(1.0, f.mul(exp(b, f.c(b.fneg(f.mul(clipped, clipped)))), tail))
    result = f.sel(f.cmp("<", ax, 1.0), near, f.sel(f.cmp(">=", ax, pieces[-1][1]), 1.0, far))
    result = f.intrinsic("copysign", result, x)
    return f.sel(f.isnan(x), x, result)


_ERF_P = [1.128379143519084, 0.18520832239976145, 0.050955695062380861, 0.0034082910107109506,
          0.00022905065861350646]  # Eigen's generic_fast_erf_float: erf(x) = x*P(x^2)/Q(x^2), x^2 <= 16
_ERF_Q = [1.0, 0.49746925110067538, 0.11098505178285362, 0.014070470171167667, 0.0010179625278914885,
          0.000023547966471313185, -1.1791602954361697e-7]


def _erf_32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """One rational, one division (Eigen's and XLA's): x*P(x^2)/Q(x^2) with x^2 clamped to 16 (erf(4)
    rounds to 1 in f32) and the result to [-1, 1]. 5 ulp at most (near x = 3, where the quotient's
    rounding shows against erf ~ 1 - 2e-5); the two-polynomial form it replaced was 2 ulp but ~30
    instructions per vector against ~15, and a GELU epilogue's erf is most of its cost (vit's
    197x768x3072 GELU matmul: see the commit). NaN passes through (selects compare their own input),
    +-inf gives +-1, -0 gives -0."""
    f = _Ops(b, x.type)
    z = f.mul(x, x)
    z = f.sel(f.cmp(">", z, 16.0), 16.0, z)
    ratio = f.div(f.mul(x, f.horner(z, _ERF_P)), f.horner(z, _ERF_Q))
    return f.clamp(ratio, -1.0, 1.0)


def two_product(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
    """p + e == x*y exactly (Dekker, with Veltkamp's split; f64, |x|, |y| < 1e290; no FMA needed)."""
    f = _Ops(b, F64)

    def split(a: ir.Value) -> tuple[ir.Value, ir.Value]:
        c = f.mul(a, 134217729.0)
        hi = f.sub(c, f.sub(c, a))
        return hi, f.sub(a, hi)

    p = f.mul(x, y)
    xh, xl = split(x)
    yh, yl = split(y)
    e = f.add(f.add(f.add(f.sub(f.mul(xh, yh), p), f.mul(xh, yl)), f.mul(xl, yh)), f.mul(xl, yl))
    return p, e


def _exact_madd(f: _Ops, x: ir.Value, y: float, z: ir.Value) -> ir.Value:
    """x*y + z rounded about once, as an FMA would, on targets with and without one."""
    p, e = two_product(f.b, x, f.c(y))
    s = f.add(z, p)
    back = f.sub(s, z)
    s_err = f.add(f.sub(z, f.sub(s, back)), f.sub(p, back))  # Knuth's two-sum
    return f.add(s, f.add(s_err, e))


def _sincos64(b: ir.IRBuilder, x: ir.Value, shift: int) -> ir.Value:
    """sin(x + shift*pi/2) in f64: x = k*pi/2 + r (Cody-Waite, 3 parts of 33 bits, each step
    FMA-exact), Taylor on |r| <= pi/4. Accurate to |x| ~ 1e14; NaN beyond 1e15 (no Payne-Hanek)."""
    f = _Ops(b, F64)
    finite = f.cmp("<", f.intrinsic("fabs", x), 1e15)
    safe = f.sel(finite, x, 0.0)
    k = f.intrinsic("roundeven", f.mul(safe, 0.63661977236758134308))
    r = _exact_madd(f, k, -1.57079632673412561417e+00, safe)
    r = _exact_madd(f, k, -6.07710050630396597660e-11, r)
    r = _exact_madd(f, k, -2.02226624871116645580e-21, r)
    z = f.mul(r, r)
    sin_r = f.madd(f.mul(r, z), f.horner(z, [(-1.0) ** n / math.factorial(2 * n + 1) for n in range(1, 9)]), r)
    cos_r = f.horner(z, [(-1.0) ** n / math.factorial(2 * n) for n in range(0, 10)])
    quadrant = b.and_(b.add(b.fptosi(k, f.int), f.ci(shift)), f.ci(3))
    use_cos = b.trunc(quadrant, ir.IntType(1))
    negate = b.icmp_unsigned(">=", quadrant, f.ci(2))
    value = f.sel(use_cos, cos_r, sin_r)
    value = f.sel(negate, f.c(b.fneg(value)), value)
    value = f.sel(f.cmp("==", x, 0.0), x, value) if shift == 0 else value  # sin(-0) = -0
    return f.sel(finite, value, math.nan)


def _in_f64(fn64: Callable[..., ir.Value]) -> Callable[..., ir.Value]:
    """Run an f64 formula for f32 arguments and round once."""

    def run(b: ir.IRBuilder, *args: ir.Value) -> ir.Value:
        if args[0].type == F64:
            return fn64(b, *args)
        return b.fptrunc(fn64(b, *(b.fpext(a, F64) for a in args)), F32)

    return run


sin = _in_f64(lambda b, x: _sincos64(b, x, 0))
cos = _in_f64(lambda b, x: _sincos64(b, x, 1))


def _pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """x**y = exp(y*log|x|) with C99 pow's special cases (pow(x, 0) = 1, pow(1, y) = 1, ...); f64."""
    f = _Ops(b, x.type)
    ax = f.intrinsic("fabs", x)
    # y*log|x| in extra precision, so the error is not multiplied by |y*log x| (up to ~745)
    regular = b.and_(f.cmp(">", ax, 0.0), f.cmp("<", ax, math.inf))
    log_hi, log_lo = _log_f64_extra(f, f.sel(regular, ax, 1.0))
    log_hi = f.sel(regular, log_hi, log(b, ax))
    _, t_err = two_product(b, f.sel(f.cmp("<", f.intrinsic("fabs", y), 1e280), y, 0.0), log_hi)
    t_hi = f.mul(y, log_hi)
    t_lo = f.madd(y, log_lo, t_err)
    t_lo = f.sel(b.and_(regular, f.cmp("<", f.intrinsic("fabs", t_hi), 1000.0)), t_lo, 0.0)
    scale = exp(b, t_hi)
    # exp(t_hi + t_lo) ~ exp(t_hi) * (1 + t_lo); inf stays inf (inf * 0 would be nan)
    magnitude = f.sel(f.cmp("<", scale, math.inf), f.madd(scale, t_lo, scale), scale)
    y_int = f.cmp("==", f.intrinsic("floor", y), y)
    half = f.mul(y, 0.5)
    y_odd = b.and_(y_int, f.cmp("!=", f.intrinsic("floor", half), half))
    x_neg = b.icmp_signed("<", f.bits(x), f.ci(0))  # sign bit, so -0 counts
    result = f.sel(b.and_(x_neg, y_odd), f.c(b.fneg(magnitude)), magnitude)
    finite_negative = b.and_(f.cmp("<", x, 0.0), f.cmp(">", x, -math.inf))  # pow(-inf, 0.5) = inf
    result = f.sel(b.and_(finite_negative, b.not_(y_int)), math.nan, result)
    y_inf = f.cmp("==", f.intrinsic("fabs", y), math.inf)
    result = f.sel(b.and_(f.cmp("==", ax, 1.0), y_inf), 1.0, result)
    result = f.sel(f.cmp("==", x, 1.0), 1.0, result)
    return f.sel(f.cmp("==", y, 0.0), 1.0, result)


pow = _in_f64(_pow)  # noqa: A001 - the IR op's name


I64 = ir.IntType(64)
_FMOD_EXPONENT_BITS = {F32: 9, F64: 12}  # bits of the largest exponent gap between two values


def _fmod_parts(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """|x| = m * 2**e with the integer m in [2**52, 2**53) (subnormals normalised); x finite, non-zero."""
    bits = b.and_(b.bitcast(x, I64), ir.Constant(I64, (1 << 63) - 1))
    field = b.lshr(bits, ir.Constant(I64, 52))
    subnormal = b.icmp_unsigned("==", field, ir.Constant(I64, 0))
    implicit = b.select(subnormal, ir.Constant(I64, 0), ir.Constant(I64, 1 << 52))
    raw = b.or_(b.and_(bits, ir.Constant(I64, (1 << 52) - 1)), implicit)
    shift = b.sub(call_intrinsic(b, "llvm.ctlz", raw, ir.Constant(ir.IntType(1), 0)), ir.Constant(I64, 11))
    biased = b.select(subnormal, ir.Constant(I64, 1), field)
    exponent = b.sub(b.sub(biased, ir.Constant(I64, 1075)), shift)
    return b.shl(raw, shift), exponent


def _mulmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value, m: ir.Value) -> ir.Value:
    """x*y mod m for integers x, y < m in [2**52, 2**53): the quotient estimated in f64 is off by at
    most 3, so x*y - q*m, exact in wrapping i64 arithmetic, needs at most 3 corrections each way."""
    f = _Ops(b, F64)
    estimate = f.intrinsic("floor", f.div(f.mul(b.uitofp(x, F64), b.uitofp(y, F64)), b.uitofp(m, F64)))
    r = b.sub(b.mul(x, y), b.mul(b.fptosi(estimate, I64), m))
    for _ in range(3):
        r = b.select(b.icmp_signed("<", r, ir.Constant(I64, 0)), b.add(r, m), r)
        r = b.select(b.icmp_signed(">=", r, m), b.sub(r, m), r)
    return r


def _scale(b: ir.IRBuilder, r: ir.Value, exponent: ir.Value) -> ir.Value:
    """r * 2**exponent for integer r < 2**53 and exponent >= -1126, in two exact steps (the second
    rounds once, and not at all where the result is representable)."""
    half = b.ashr(exponent, ir.Constant(I64, 1))
    rest = b.sub(exponent, half)

    def power(k: ir.Value) -> ir.Value:
        return b.bitcast(b.shl(b.add(k, ir.Constant(I64, 1023)), ir.Constant(I64, 52)), F64)

    return b.fmul(b.fmul(b.uitofp(r, F64), power(half)), power(rest))


def fmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """C fmod, exact for every input (XLA's rem): with x = mx*2**ex and y = my*2**ey, fmod(x, y) is
    (mx * 2**(ex-ey) mod my) * 2**ey, where 2**(ex-ey) mod my comes by square-and-multiply over the
    exponent gap's bits. f32 runs in f64 (exact) and rounds once (exactly). fmod(x, 0), fmod(inf, y)
    and NaNs give NaN; fmod(x, inf) = x; |x| < |y| gives x."""
    f = _Ops(b, F64)
    xw, yw = (b.fpext(x, F64), b.fpext(y, F64)) if x.type == F32 else (x, y)
    ax, ay = f.intrinsic("fabs", xw), f.intrinsic("fabs", yw)
    mx, ex = _fmod_parts(b, xw)
    my, ey = _fmod_parts(b, yw)
    gap = b.sub(ex, ey)
    power = ir.Constant(I64, 1)
    for bit in reversed(range(_FMOD_EXPONENT_BITS[x.type])):
        power = _mulmod(b, power, power, my)
        doubled = b.shl(power, ir.Constant(I64, 1))
        doubled = b.select(b.icmp_signed(">=", doubled, my), b.sub(doubled, my), doubled)
        set_bit = b.trunc(b.lshr(gap, ir.Constant(I64, bit)), ir.IntType(1))
        power = b.select(set_bit, doubled, power)
    mx_mod = b.select(b.icmp_unsigned(">=", mx, my), b.sub(mx, my), mx)
    r = _scale(b, _mulmod(b, mx_mod, power, my), ey)
    r = f.sel(b.icmp_signed("<", gap, ir.Constant(I64, 0)), ax, r)
    r = f.sel(f.cmp("==", ax, 0.0), ax, f.sel(f.cmp("==", ay, math.inf), ax, r))
    r = f.intrinsic("copysign", r, xw)
    invalid = b.or_(b.fcmp_unordered("uno", xw, yw), b.or_(f.cmp("==", ay, 0.0), f.cmp("==", ax, math.inf)))
    r = f.sel(invalid, math.nan, r)
    return b.fptrunc(r, x.type) if x.type == F32 else r


def _by_type(f32: Callable[..., ir.Value], f64: Callable[..., ir.Value]) -> Callable[..., ir.Value]:
    """One function per float type (the f32 forms trade the f64 forms' generality for speed)."""
    rules = {F32: f32, F64: f64}
    return lambda b, x: rules[_element(x.type)](b, x)


exp = _by_type(_exp_32, _exp_64)
expm1 = _by_type(_expm1_32, _expm1_64)
tanh = _by_type(_tanh_32, _tanh_64)
erf = _by_type(_erf_32, _erf_64)

UNARY: dict[str, Callable[[ir.IRBuilder, ir.Value], ir.Value]] = {
    "exp": exp, "log": log, "log1p": log1p, "expm1": expm1, "tanh": tanh, "erf": erf,
    "logistic": logistic, "sin": sin, "cos": cos,
}
