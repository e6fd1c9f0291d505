"""python -m benchmarks.int8_kernels: the integer matmul and conv kernels against ONNX Runtime, one pinned thread.

Cases are single ONNX MatMulInteger / ConvInteger nodes (u8 activations with a zero point, constant s8
weights), run by Cerebro (codegen/int_dot.py's form for this host) and by ORT, sampled in interleaved rounds
(benchmarks/timing.py), after checking Cerebro's output against onnx.reference's bit for bit. ORT's
u8 x s8 kernels on AVX2 without VNNI use vpmaddubsw, whose i16 pair sums saturate, so its results can
differ from the reference: the count of such elements is reported. Each median is also given as integer
ops per second (2 per multiply-add) and as a share of this core's peak for the form Cerebro uses: a JIT
loop of that form's dot step on registers (8 independent accumulators, no memory), the most the
instruction can do here. The load average is recorded before and after (the machine is shared). Inputs
are ALIGN-byte aligned (both runtimes get the same array): an unaligned one sends Cerebro's call through
its copying path.

    python -m benchmarks.int8_kernels [--quick] [--json out.json]
"""

from __future__ import annotations

import ctypes
import math
import os
import time

import numpy as np

from benchmarks import machine, one_cpu, timing
from benchmarks.pools import ort_session

MATMULS = [(1, 784, 512), (1, 512, 512), (64, 512, 512)]
# batch, in channels, height, width, out channels, kernel size (pad 1), weights: u8 with a zero point (the dot
# kernel, codegen/conv_int.py) or s8 with zero points 0 as quantizers write them (codegen/conv_int_packed.py on AVX2)
CONVS = [(1, 32, 28, 28, 64, 3, "u8"), (1, 32, 28, 28, 64, 3, "s8"), (1, 32, 14, 14, 64, 3, "s8")]
PEAK_ACCUMULATORS = 8
PEAK_STEPS = 1 << 18
PEAK_REPEATS = 50  # the best of many short runs: a busy machine still leaves some undisturbed


def matmul_model(m: int, k: int, n: int, seed: int = 0) -> object:
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.integers(-128, 128, (k, n), dtype=np.int8), "w"),
             numpy_helper.from_array(np.array(131, np.uint8), "xz"),
             numpy_helper.from_array(np.array(3, np.int8), "wz")]
    node = helper.make_node("MatMulInteger", ["x", "w", "xz", "wz"], ["y"])
    return _model(node, inits, [m, k], [m, n])


def conv_model(batch: int, cin: int, h: int, w: int, cout: int, size: int, weights: str = "u8",
               seed: int = 0) -> object:
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    shape = (cout, cin, size, size)
    kernel, zero = ((rng.integers(0, 256, shape, dtype=np.uint8), np.uint8(5)) if weights == "u8"
                    else (rng.integers(-127, 128, shape, dtype=np.int8), np.int8(0)))
    inits = [numpy_helper.from_array(kernel, "w"), numpy_helper.from_array(np.array(131, np.uint8), "xz"),
             numpy_helper.from_array(np.array(zero), "wz")]
    pad = size // 2
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[pad] * 4)
    return _model(node, inits, [batch, cin, h, w], [batch, cout, h, w])


def _model(node: object, inits: list, x_shape: list[int], y_shape: list[int]) -> object:
    from onnx import TensorProto, helper

    graph = helper.make_graph([node], node.op_type, [helper.make_tensor_value_info("x", TensorProto.UINT8, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, y_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def peak_ops_per_second() -> tuple[str, float]:
    """(the host's dot form, its integer ops per second on this core): PEAK_STEPS steps of 8 accumulators."""
    import llvmlite.binding as llvm
    from llvmlite import ir

    from cerebro.compiler.codegen.int_dot import dot_form, reduce_add
    from cerebro.compiler.targets import resolve_target

    target = resolve_target("host")
    form = dot_form(target, 1 << 20)
    module = ir.Module("peak")
    module.triple = target.triple
    i64, i32 = ir.IntType(64), ir.IntType(32)
    fn = ir.Function(module, ir.FunctionType(i32, [i64]), "spin")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    entry, loop, done = b.block, fn.append_basic_block("loop"), fn.append_basic_block("done")
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(i64)
    accs = [b.phi(ir.VectorType(i32, form.sums)) for _ in range(PEAK_ACCUMULATORS)]
    kind = form.operand_type()
    # each step multiplies its own accumulator's bits (so nothing is hoisted) by its own constant
    new = [form.step(b, acc, ir.Constant(kind, [j + 2] * form.width), b.bitcast(acc, kind))
           for j, acc in enumerate(accs)]
    step = b.add(k, i64(1))
    k.add_incoming(i64(0), entry)
    k.add_incoming(step, loop)
    zero = ir.Constant(ir.VectorType(i32, form.sums), [0] * form.sums)
    for phi, value in zip(accs, new):
        phi.add_incoming(zero, entry)
        phi.add_incoming(value, loop)
    b.cbranch(b.icmp_unsigned("<", step, fn.args[0]), loop, done)
    b.position_at_end(done)
    b.ret(_sum(b, [reduce_add(b, v) for v in new]))
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(str(module)), target.target_machine())
    engine.finalize_object()
    spin = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64)(engine.get_function_address("spin"))
    spin(1000)
    best = math.inf
    for _ in range(PEAK_REPEATS):
        start = time.perf_counter()
        spin(PEAK_STEPS)
        best = min(best, time.perf_counter() - start)
    return form.name, 2 * form.width * PEAK_ACCUMULATORS * PEAK_STEPS / best


def _sum(b: object, values: list) -> object:
    total = values[0]
    for v in values[1:]:
        total = b.add(total, v)
    return total


def variants(model: object) -> dict[str, object]:
    import cerebro
    from cerebro import runtime

    ours = runtime.load(cerebro.compile_onnx(model, cache=False))
    theirs = ort_session(model.SerializeToString())
    return {"cerebro": lambda x: ours(x)[0], "ort": lambda x: theirs.run(None, {"x": x})[0]}


def main(argv: list[str] | None = None) -> dict:
    from onnx.reference import ReferenceEvaluator

    from cerebro.runtime import aligned_empty

    args = one_cpu.parser(__doc__).parse_args(argv)
    one_cpu.pin()
    form, peak = peak_ops_per_second()
    results: dict = {"machine": machine.describe(), "threads": 1, "form": form, "peak_ops_per_s": peak,
                     "load_before": os.getloadavg(), "cases": {}}
    print(f"peak of {form} on this core: {peak / 1e9:.1f} Gop/s")
    rng = np.random.default_rng(3)
    cases = {f"matmul {m}x{k}x{n}": (matmul_model(m, k, n), (m, k), 2 * m * k * n) for m, k, n in MATMULS}
    cases.update({f"conv {b}x{c}x{h}x{w} -> {o} k{s} {t} weights": (conv_model(b, c, h, w, o, s, t), (b, c, h, w),
                                                                   2 * b * o * h * w * c * s * s)
                  for b, c, h, w, o, s, t in CONVS})
    for name, (model, shape, ops) in cases.items():
        calls = variants(model)
        x = aligned_empty(shape, np.uint8)  # an unaligned input takes the runtime's copying path (~11 us here)
        x[...] = rng.integers(0, 256, shape, dtype=np.uint8)
        want = ReferenceEvaluator(model).run(None, {"x": x})[0]
        np.testing.assert_array_equal(calls["cerebro"](x), want)  # the reference's bits, or no timing
        ort_wrong = int(np.count_nonzero(calls["ort"](x) != want))
        times = timing.sample_interleaved({v: (lambda call=call, x=x: call(x)) for v, call in calls.items()},
                                          one_cpu.budget(args))
        summary = {v: timing.summarize(samples) for v, samples in times.items()}
        for s in summary.values():
            s["gops"] = ops / (s["median_ms"] * 1e-3) / 1e9
            s["share_of_peak"] = s["gops"] * 1e9 / peak
        results["cases"][name] = {"times": summary, "ort_elements_differing_from_reference": ort_wrong}
        print(f"{name}: " + "   ".join(f"{v} {s['median_ms']:.4f} ms ({s['gops']:.1f} Gop/s, "
                                       f"{100 * s['share_of_peak']:.0f}% of peak)" for v, s in summary.items())
              + f"   ort/cerebro {summary['ort']['median_ms'] / summary['cerebro']['median_ms']:.2f}x"
              + f"   ort differs from the reference in {ort_wrong} of {want.size} elements")
    results["load_after"] = os.getloadavg()
    print(f"load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}")
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
