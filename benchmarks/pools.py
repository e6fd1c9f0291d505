"""Pooling layers from real models (NCHW, as exported from PyTorch): Cerebro vs ONNX Runtime, one thread.

    python -m benchmarks.pools            # median ms per backend and the ORT/Cerebro speed ratio

Each case is one MaxPool/AveragePool node built with onnx.helper; both backends run in this process
with one thread, sampled in interleaved rounds (benchmarks/timing.py) so that load from other jobs
falls on both alike.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from benchmarks.timing import Budget, sample_interleaved


@dataclass(frozen=True)
class Pool:
    name: str
    op: str
    shape: tuple[int, ...]
    kernel: int
    stride: int
    pad: int
    attrs: tuple[tuple[str, int], ...] = ()  # more node attributes: ceil_mode, count_include_pad


CASES = (
    Pool("yolox SPP 5x5/1", "MaxPool", (1, 192, 13, 13), 5, 1, 2),
    Pool("yolox SPP 9x9/1", "MaxPool", (1, 192, 13, 13), 9, 1, 4),
    Pool("yolox SPP 13x13/1", "MaxPool", (1, 192, 13, 13), 13, 1, 6),
    Pool("resnet stem 3x3/2", "MaxPool", (1, 64, 112, 112), 3, 2, 1),
    Pool("shufflenet 3x3/2", "MaxPool", (1, 24, 112, 112), 3, 2, 1),
    Pool("avg 3x3/1 (inception)", "AveragePool", (1, 64, 35, 35), 3, 1, 1),
)


def pool_model(case: Pool) -> bytes:
    """One pooling node as a serialized ONNX model (opset 17)."""
    from onnx import TensorProto, helper

    n, c, h, w = case.shape
    out = [(size + 2 * case.pad - case.kernel) // case.stride + 1 for size in (h, w)]
    node = helper.make_node(case.op, ["x"], ["y"], kernel_shape=[case.kernel] * 2, strides=[case.stride] * 2,
                            pads=[case.pad] * 4, **dict(case.attrs))
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, case.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c, *out])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def cerebro_model(model: bytes) -> object:
    import onnx

    from cerebro import runtime
    from cerebro.compiler import build
    from cerebro.frontends.onnx import import_onnx

    return runtime.load(build(import_onnx(onnx.load_from_string(model))))


def ort_session(model: bytes) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="sampling time per backend and case")
    args = parser.parse_args()
    budget = Budget(warmup=5, min_repeats=200, min_seconds=args.seconds, max_seconds=10 * args.seconds, rounds=4)
    print("threads: 1 (Cerebro threads=1, ORT intra/inter_op_num_threads=1)")
    print(f"{'case':24} {'Cerebro ms':>10} {'ORT ms':>8} {'speed vs ORT':>12}")
    for case in CASES:
        model = pool_model(case)
        x = np.random.default_rng(0).standard_normal(case.shape).astype(np.float32)
        compiled, session = cerebro_model(model), ort_session(model)
        ours_out = compiled(x)
        np.testing.assert_allclose(ours_out[0] if isinstance(ours_out, (tuple, list)) else ours_out,
                                   session.run(None, {"x": x})[0], rtol=1e-6, atol=1e-6)
        calls = {"cerebro": lambda m=compiled, x=x: m(x), "ort": lambda s=session, x=x: s.run(None, {"x": x})}
        times = sample_interleaved(calls, budget)
        ours, theirs = (float(np.median(times[k])) * 1e3 for k in ("cerebro", "ort"))
        print(f"{case.name:24} {ours:10.4f} {theirs:8.4f} {theirs / ours:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
