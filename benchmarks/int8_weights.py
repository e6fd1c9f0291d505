"""python -m benchmarks.int8_weights: batch-1 dense layers with int8 weights, Cerebro against ONNX Runtime.

Models (ONNX MatMul + Add, Relu between layers): an MLP 784-512-512-10 and one 4096x4096 dense layer, input
one row. Variants of the same model: `cerebro f32`, `cerebro int8-weights` (compile_onnx(quantize=
"int8-weights"): passes/int8_weights.py), `ort f32` and `ort quantize_dynamic` (ORT's own dynamic
quantization, per-channel s8 weights; its activations are quantized per call too). One process pinned to one
CPU, Cerebro's runtime and ORT's pools on one thread, sampled in interleaved rounds (benchmarks/timing.py).
For the MLP, accuracy against `cerebro f32` on 1000 random inputs: max and mean abs logit error, top-1
agreement.

    python -m benchmarks.int8_weights [--quick] [--json out.json]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import machine, one_cpu, timing
from benchmarks.pools import ort_session

MODELS = {"mlp 784-512-512-10": [784, 512, 512, 10], "dense 4096x4096": [4096, 4096]}
ACCURACY_INPUTS = 1000


def dense_model(sizes: list[int], seed: int = 0) -> object:
    """An ONNX model of dense layers (relu between them) on one input row x."""
    from benchmarks.onnx_dense import dense_stack

    rng = np.random.default_rng(seed)
    layers = [((rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), (rng.normal(size=b) * 0.1).astype(np.float32))
              for a, b in zip(sizes, sizes[1:])]
    return dense_stack(layers, opset=17, graph="dense")


def ort_quantized(model: object) -> bytes:
    """model through onnxruntime.quantization.quantize_dynamic (per-channel s8 weights)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "f32.onnx"), Path(tmp, "int8.onnx")
        onnx.save(model, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
        return target.read_bytes()


def variants(sizes: list[int]) -> dict[str, object]:
    """name -> fn(x) giving the logits, one per variant of the same model."""
    import cerebro
    from cerebro import runtime

    model = dense_model(sizes)
    ours = {name: runtime.load(cerebro.compile_onnx(model, cache=False, quantize=mode))
            for name, mode in (("cerebro f32", None), ("cerebro int8-weights", "int8-weights"))}
    theirs = {"ort f32": ort_session(model.SerializeToString()),
              "ort quantize_dynamic": ort_session(ort_quantized(model))}
    calls = {name: (lambda x, loaded=loaded: loaded(x)[0]) for name, loaded in ours.items()}
    calls.update({name: (lambda x, run=session.run: run(None, {"x": x})[0]) for name, session in theirs.items()})
    return calls


def accuracy(calls: dict[str, object], width: int) -> dict:
    """Each quantized variant against cerebro f32 on ACCURACY_INPUTS random rows."""
    rows = np.random.default_rng(1).normal(size=(ACCURACY_INPUTS, 1, width)).astype(np.float32)
    want = np.stack([calls["cerebro f32"](x) for x in rows])
    report = {}
    for name in ("cerebro int8-weights", "ort quantize_dynamic"):
        got = np.stack([calls[name](x) for x in rows])
        error = np.abs(got - want)
        report[name] = {"max_abs_error": float(error.max()), "mean_abs_error": float(error.mean()),
                        "max_abs_logit": float(np.abs(want).max()),
                        "top1_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1)))}
    return report


def main(argv: list[str] | None = None) -> dict:
    args = one_cpu.parser(__doc__).parse_args(argv)
    one_cpu.pin()
    results: dict = {"machine": machine.describe(), "threads": 1, "models": {}}
    for name, sizes in MODELS.items():
        calls = variants(sizes)
        x = np.random.default_rng(2).normal(size=(1, sizes[0])).astype(np.float32)
        times = timing.sample_interleaved({v: (lambda call=call, x=x: call(x)) for v, call in calls.items()},
                                          one_cpu.budget(args))
        summary = {variant: timing.summarize(samples) for variant, samples in times.items()}
        results["models"][name] = {"times": summary}
        print(f"{name}: " + "   ".join(f"{v} {s['median_ms']:.3f} ms" for v, s in summary.items()))
        if sizes[-1] > 1 and len(sizes) > 2:
            results["models"][name]["accuracy"] = report = accuracy(calls, sizes[0])
            for variant, r in report.items():
                print(f"  {variant}: max abs error {r['max_abs_error']:.4f}, mean {r['mean_abs_error']:.5f} "
                      f"(max |logit| {r['max_abs_logit']:.2f}), top-1 agreement {100 * r['top1_agreement']:.1f}%")
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
