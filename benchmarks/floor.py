"""The memory floor of a batch-1 model: how fast one core can merely read its weights.

A dense layer at batch 1 reads every weight once per call and does two flops per weight,
so its time is bounded below by the time to stream the weights from wherever they sit
(L2, L3). This measures that bound on the current machine with the simplest possible
kernel: an LLVM-JITed loop of aligned vector loads into four accumulators, no stores.

    python -m benchmarks.floor 2.7 1.6        # megabytes; prints microseconds and GB/s
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

ACCUMULATORS = 4


def _read_loop(lanes: int) -> ir.Module:
    """float read(ptr p, i64 vectors, i64 repeats): sum of `vectors` <lanes x float> at p, repeated."""
    f32, i64, vec = ir.FloatType(), ir.IntType(64), ir.VectorType(ir.FloatType(), lanes)
    module = ir.Module("floor")
    fn = ir.Function(module, ir.FunctionType(f32, [ir.PointerType(), i64, i64]), "read")
    p, vectors, repeats = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    entry, outer, inner, inner_end, done = (b.block, fn.append_basic_block("outer"), fn.append_basic_block("inner"),
                                            fn.append_basic_block("inner_end"), fn.append_basic_block("done"))
    zero = ir.Constant(vec, [0.0] * lanes)
    b.branch(outer)
    b.position_at_end(outer)
    r = b.phi(i64)
    carried = [b.phi(vec) for _ in range(ACCUMULATORS)]
    b.branch(inner)
    b.position_at_end(inner)
    i = b.phi(i64)
    accs = [b.phi(vec) for _ in range(ACCUMULATORS)]
    new = []
    for k, acc in enumerate(accs):
        at = b.gep(p, [b.add(i, ir.Constant(i64, k))], source_etype=vec)
        new.append(b.fadd(acc, b.load(at, typ=vec, align=64)))
    i_next = b.add(i, ir.Constant(i64, ACCUMULATORS))
    b.cbranch(b.icmp_unsigned("<", i_next, vectors), inner, inner_end)
    i.add_incoming(ir.Constant(i64, 0), outer)
    i.add_incoming(i_next, inner)
    for acc, start, value in zip(accs, carried, new):
        acc.add_incoming(start, outer)
        acc.add_incoming(value, inner)
    b.position_at_end(inner_end)
    r_next = b.add(r, ir.Constant(i64, 1))
    b.cbranch(b.icmp_unsigned("<", r_next, repeats), outer, done)
    r.add_incoming(ir.Constant(i64, 0), entry)
    r.add_incoming(r_next, inner_end)
    for start, value in zip(carried, new):
        start.add_incoming(zero, entry)
        start.add_incoming(value, inner_end)
    b.position_at_end(done)
    total = new[0]
    for value in new[1:]:
        total = b.fadd(total, value)
    b.ret(b.extract_element(total, ir.Constant(ir.IntType(32), 0)))
    return module


def read_time(nbytes: int, trials: int = 20, repeats: int = 50) -> float:
    """Best seconds per read of nbytes (rounded up to whole vector groups), one thread."""
    from cerebro.compiler.targets import resolve_target

    target = resolve_target("host")
    lanes = target.vector_width
    group = lanes * ACCUMULATORS
    count = max(group, -(-nbytes // 4 // group) * group)
    tm = target.target_machine()
    module = llvm.parse_assembly(str(_read_loop(lanes)))
    engine = llvm.create_mcjit_compiler(module, tm)
    engine.finalize_object()
    read = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(
        engine.get_function_address("read"))
    raw = np.ones(count + 16, np.float32)
    data = raw[(-raw.ctypes.data % 64) // 4:][:count]
    read(data.ctypes.data, count // lanes, 5)  # warm: into the caches it fits
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        read(data.ctypes.data, count // lanes, repeats)
        best = min(best, (time.perf_counter() - start) / repeats)
    del engine
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("megabytes", type=float, nargs="+")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last usable one)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))})
    for mb in args.megabytes:
        seconds = read_time(int(mb * 1e6))
        print(f"{mb:g} MB: {seconds * 1e6:.1f} us ({mb * 1e6 / seconds / 1e9:.0f} GB/s)")


if __name__ == "__main__":
    main()
