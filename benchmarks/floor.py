"""The floors of one core: how fast it can merely read bytes, and how fast it can multiply-add.

A dense layer at batch 1 reads every weight once per call and does two flops per weight,
so its time is bounded below by the time to stream the weights from wherever they sit
(L2, L3). This measures that bound on the current machine with the simplest possible
kernel: an LLVM-JITed loop of aligned vector loads into four accumulators, no stores.
Its compute twin, `fma_peak`, times a loop of independent vector FMAs on registers only:
the most float32 flops per second one core can do (convolutions and matmuls are bounded by it);
`gemm_peak` the most a real GEMM (Cerebro's, ONNX Runtime's) reaches, which is what a layer can run at.

    python -m benchmarks.floor 2.7 1.6        # megabytes; prints microseconds and GB/s, then the FMA and GEMM peaks
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
from collections.abc import Callable

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

ACCUMULATORS = 4
# Independent FMA chains in the peak loop: enough to cover FMA latency x FMA units (Zen 2: 5 cycles x 2,
# Skylake 4 x 2) in the 16 vector registers of AVX2, leaving two for the operands.
FMA_CHAINS = 12


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
    _return_lane0_of_sum(b, new)
    return module


def _return_lane0_of_sum(builder: ir.IRBuilder, vectors: list[ir.Value]) -> None:
    """Return lane 0 of the vectors' sum: every accumulator feeds the result, so none is dead code."""
    total = vectors[0]
    for value in vectors[1:]:
        total = builder.fadd(total, value)
    builder.ret(builder.extract_element(total, ir.Constant(ir.IntType(32), 0)))


def _jit(build: Callable[[int], ir.Module], name: str, signature: type) -> tuple[Callable, int, object]:
    """(the host-compiled function `name` of build(lanes), lanes, its engine: keep it alive while calling)."""
    from cerebro.compiler.targets import resolve_target

    target = resolve_target("host")
    lanes = target.vector_width
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(str(build(lanes))), target.target_machine())
    engine.finalize_object()
    return signature(engine.get_function_address(name)), lanes, engine


def _fma_loop(lanes: int) -> ir.Module:
    """float fma(i64 steps, float a, float b): FMA_CHAINS independent chains acc = acc * a + b on
    <lanes x float> registers, `steps` times each; returns a lane of their sum (nothing is dead)."""
    f32, i64, vec = ir.FloatType(), ir.IntType(64), ir.VectorType(ir.FloatType(), lanes)
    module = ir.Module("peak")
    fma = ir.Function(module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{lanes}f32")
    fn = ir.Function(module, ir.FunctionType(f32, [i64, f32, f32]), "fma")
    steps, a, b = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    entry, body, done = builder.block, fn.append_basic_block("body"), fn.append_basic_block("done")
    splat = [builder.insert_element(ir.Constant(vec, ir.Undefined), s, ir.Constant(ir.IntType(32), 0)) for s in (a, b)]
    va, vb = (builder.shuffle_vector(s, s, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
              for s in splat)
    builder.branch(body)
    builder.position_at_end(body)
    i = builder.phi(i64)
    accs = [builder.phi(vec) for _ in range(FMA_CHAINS)]
    new = [builder.call(fma, [acc, va, vb]) for acc in accs]
    i_next = builder.add(i, ir.Constant(i64, 1))
    builder.cbranch(builder.icmp_unsigned("<", i_next, steps), body, done)
    i.add_incoming(ir.Constant(i64, 0), entry)
    i.add_incoming(i_next, body)
    for k, (acc, value) in enumerate(zip(accs, new)):
        acc.add_incoming(ir.Constant(vec, [float(k)] * lanes), entry)
        acc.add_incoming(value, body)
    builder.position_at_end(done)
    _return_lane0_of_sum(builder, new)
    return module


def fma_peak(trials: int = 50, steps: int = 2_000_000) -> float:
    """Best float32 flops per second of one thread (an FMA is two flops per lane), registers only. Many
    short trials (~4 ms each): on a loaded machine some get the core to themselves."""
    run, lanes, engine = _jit(_fma_loop, "fma", ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64, ctypes.c_float,
                                                                 ctypes.c_float))
    run(steps // 10, 0.5, 0.25)  # warm: clocks up
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        run(steps, 0.5, 0.25)
        best = min(best, time.perf_counter() - start)
    del engine
    return 2 * lanes * FMA_CHAINS * steps / best


GEMM_SHAPES = ((512, 512, 512), (384, 768, 3072))  # M x K x N: one mostly in L2, a transformer FFN's weights in L3


def _matmul_onnx(m: int, k: int, n: int) -> bytes:
    """An ONNX model x[m, k] @ w[k, n] (w a random initializer)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _gemm_runners(model: bytes) -> dict[str, Callable[[np.ndarray], object]]:
    """One-thread callables running `model` per backend: Cerebro's, and ONNX Runtime's where installed."""
    import cerebro

    runners: dict[str, Callable[[np.ndarray], object]] = {}
    compiled = cerebro.load(cerebro.compile_onnx(model, cache=False), threads=1)
    runners["cerebro"] = compiled
    try:
        import onnxruntime
    except ImportError:
        return runners
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    runners["onnxruntime"] = lambda x: session.run(None, {"x": x})
    return runners


def gemm_peak(shapes: tuple[tuple[int, int, int], ...] = GEMM_SHAPES, seconds: float = 0.3) -> dict[str, float]:
    """Best float32 flops per second one thread reaches in a plain GEMM, per backend (Cerebro, ONNX Runtime),
    over `shapes`: what a conv or matmul layer can really run at, packing, cache traffic and all. Wider
    cores reach less of their register-only FMA rate (fma_peak) this way: a two-FMA-port Xeon 80%."""
    best: dict[str, float] = {}
    for m, k, n in shapes:
        x = np.random.default_rng(1).standard_normal((m, k), np.float32)
        for name, run in _gemm_runners(_matmul_onnx(m, k, n)).items():
            run(x)  # warm: weights into the caches they fit, clocks up
            fastest, spent = float("inf"), 0.0
            while spent < seconds:
                start = time.perf_counter()
                run(x)
                took = time.perf_counter() - start
                fastest, spent = min(fastest, took), spent + took
            best[name] = max(best.get(name, 0.0), 2 * m * k * n / fastest)
    return best


def read_time(nbytes: int, trials: int = 20, repeats: int = 50) -> float:
    """Best seconds per read of nbytes (rounded up to whole vector groups), one thread."""
    read, lanes, engine = _jit(_read_loop, "read", ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_void_p, ctypes.c_int64,
                                                                    ctypes.c_int64))
    group = lanes * ACCUMULATORS
    count = max(group, -(-nbytes // 4 // group) * group)
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
    print(f"float32 FMA peak: {fma_peak() / 1e9:.1f} GFLOP/s")
    for name, rate in gemm_peak().items():
        print(f"float32 GEMM, {name}: {rate / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
