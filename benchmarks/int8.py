"""python -m benchmarks.int8: static int8 (quantize="int8") against f32 and ONNX Runtime's int8, batch 1 and 64.

Models: benchmarks.models' MLP, CNN and transformer encoder (Flax, random weights), and with --minilm
MiniLM-L6 (benchmarks.minilm, real weights). Variants of the same model:
- `xla f32` (jax.jit), `cerebro f32` (cerebro.compile), `cerebro int8` (cerebro.compile(quantize="int8",
  calibration=...): passes/int8_static.py), `ort f32`, `ort quantize_static` (ORT's own static
  quantization of the same ONNX export from the same calibration inputs: QDQ, per-channel s8 weights, u8
  activations), `cerebro qdq` (that QDQ file compiled by Cerebro: frontends/onnx/rules/quant.py) and
  `ort quantize_dynamic` (per-channel s8 weights, activations quantized per call).
Calibration: CALIBRATION inputs drawn as the benchmark's own (standard normal; MiniLM: MINILM_CALIBRATION
random token sequences); at batch B the same rows, B to a sample (min/max ranges: the same scales).
Timing: one process pinned to one CPU, every runtime on one thread, interleaved rounds (benchmarks/timing.py).
Where a cerebro int8 call takes LONG_CALL_MS or more, each call's process CPU time is recorded too and the
speedups of cerebro int8 over each other variant (their time over its time) are of CPU medians: such a call
spans scheduler slices and on a shared machine its wall time measures the other jobs too (reading the
CPU clock costs ~5 us a call on this VM, so shorter calls keep wall medians).
Accuracy (batch 1 only: the same weights and scales at every batch), against `xla f32` (MiniLM: `ort f32`)
on ACCURACY_INPUTS other random inputs: max and mean abs error of the outputs, top-1 agreement for the
classifiers (MLP, CNN), mean cosine of outputs (the transformer's per input, MiniLM's sentence embeddings,
also over its example sentences).

    python -m benchmarks.int8 [--quick] [--minilm] [--batch 1,64] [--json out.json]
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import machine, models, one_cpu, timing
from benchmarks.pools import ort_session

MODELS = ("mlp", "cnn", "transformer")
CLASSIFIERS = ("mlp", "cnn")
CALIBRATION = 64
MINILM_CALIBRATION = 32  # calibration runs a compiled f32 build: ~3 CPU s for MiniLM's 32 (int8_calibrate)
ACCURACY_INPUTS = 1000
MINILM_ACCURACY_INPUTS = 100  # random token sequences (a call is ~10 ms per variant), plus the example sentences
LONG_CALL_MS = 1.0  # from here on a call is timed by its CPU time too (see the docstring)
REFERENCE = {"minilm": "ort f32"}  # what accuracy is measured against (default: xla f32)


def ort_quantized(model: bytes, samples: list[dict[str, np.ndarray]] | None) -> bytes:
    """model through ORT's recommended flow: quant_pre_process (ONNX shape inference, constant folding: the
    export's Reshapes of weights would hide them from the quantizer), then quantize_static (with samples)
    or quantize_dynamic (without); per-channel s8 weights."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(samples or [])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        source, folded, target = Path(tmp, "f32.onnx"), Path(tmp, "folded.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(model)
        quant_pre_process(source, folded, skip_symbolic_shape=True)  # ORT's symbolic pass fails on the encoder
        if samples is None:
            quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=True)
        else:
            quantize_static(folded, target, Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return target.read_bytes()


def _random_inputs(w: models.Workload, count: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """count inputs like w's own: standard normal floats; token ids and a full mask for MiniLM."""
    rng = np.random.default_rng(seed)
    if w.name == "minilm":
        ids, mask = w.inputs
        return [(np.concatenate([ids[:, :1], rng.integers(1000, 30000, (1, ids.shape[1] - 2)), ids[:, -1:]], 1)
                 .astype(ids.dtype), mask) for _ in range(count)]
    return [tuple(rng.standard_normal(a.shape, dtype=np.float32) for a in w.inputs) for _ in range(count)]


def variants(w: models.Workload, calibration: list[tuple[np.ndarray, ...]]
             ) -> dict[str, tuple[Callable, Callable]]:
    """name -> (fn(*inputs) giving the first output, prepare(inputs) -> the inputs as that backend takes
    them without a copy: on the device for XLA, 64-byte aligned for Cerebro), one per variant."""
    import tempfile

    import cerebro
    from benchmarks import to_onnx
    from cerebro import runtime

    onnx_model = w.onnx or to_onnx.export(w.fn, w.inputs, w.name).SerializeToString()
    sessions = {"ort f32": ort_session(onnx_model)}
    names = [meta.name for meta in sessions["ort f32"].get_inputs()]
    static = ort_quantized(onnx_model, [dict(zip(names, sample)) for sample in calibration])
    sessions.update({"ort quantize_static": ort_session(static),
                     "ort quantize_dynamic": ort_session(ort_quantized(onnx_model, None))})
    cbx: dict[str, bytes] = {}
    for name, mode in (("cerebro f32", None), ("cerebro int8", "int8")):
        samples = calibration if mode else None
        if w.fn is None:
            cbx[name] = cerebro.compile_onnx(onnx_model, quantize=mode, calibration=samples, cache=False)
            continue
        with tempfile.TemporaryDirectory() as tmp:  # the .cbx, called as the runtime's LoadedModel
            compiled = cerebro.compile(w.fn, quantize=mode, calibration=samples, cache=False)
            cbx[name] = compiled.export(Path(tmp, "model.cbx"), *w.inputs).read_bytes()
    cbx["cerebro qdq"] = cerebro.compile_onnx(static, cache=False)

    def aligned(inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        copies = tuple(runtime.aligned_empty(a.shape, a.dtype) for a in inputs)
        for copy, a in zip(copies, inputs):
            copy[...] = a
        return copies

    calls: dict[str, tuple[Callable, Callable]] = {}
    if w.fn is not None:
        import jax

        xla = jax.jit(w.fn)
        calls["xla f32"] = (lambda *x: np.asarray(jax.block_until_ready(xla(*x))),
                            lambda inputs: tuple(jax.device_put(a) for a in inputs))
    for name, data in cbx.items():
        loaded = runtime.load(data, threads=1)
        calls[name] = (lambda *x, loaded=loaded: loaded(*x)[0], aligned)
    for name, session in sessions.items():
        calls[name] = (lambda *x, run=session.run: run(None, dict(zip(names, x)))[0], tuple)
    return calls


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def accuracy(calls: dict[str, tuple[Callable, Callable]], inputs: list[tuple[np.ndarray, ...]], reference: str,
             classifier: bool) -> dict:
    """Each variant but the reference against it on inputs."""
    want = [calls[reference][0](*x) for x in inputs]
    report = {}
    for name, (call, _) in calls.items():
        if name == reference:
            continue
        got = [call(*x) for x in inputs]
        error = np.abs(np.stack(got) - np.stack(want))
        entry = {"max_abs_error": float(error.max()), "mean_abs_error": float(error.mean()),
                 "max_abs_output": float(np.abs(np.stack(want)).max()),
                 "min_cosine": min(_cosine(g, r) for g, r in zip(got, want)),
                 "mean_cosine": float(np.mean([_cosine(g, r) for g, r in zip(got, want)]))}
        if classifier:
            entry["top1_agreement"] = float(np.mean([g.argmax() == r.argmax() for g, r in zip(got, want)]))
        report[name] = entry
    return report


SENTENCES = ("A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "A cheetah chases prey.", "A man is riding a horse.", "Two men pushed carts through the woods.",
             "The new movie is awesome.", "Compilers turn models into native code ahead of time.")


def _sentences(w: models.Workload) -> list[tuple[np.ndarray, ...]]:
    """SENTENCES (examples/minilm/similarity.py's and more) as (input_ids, attention_mask), one per call,
    tokenised by the model's own tokenizer (examples/minilm/minilm.py) to the workload's length."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "minilm"))
    from minilm import Tokenizer

    ids, mask = Tokenizer(w.inputs[0].shape[1])(list(SENTENCES))
    return [(ids[i:i + 1], mask[i:i + 1]) for i in range(len(SENTENCES))]


def _calibration(name: str, batch: int) -> list[tuple[np.ndarray, ...]]:
    """The calibration rows (drawn at batch 1, seed 11) as samples of `batch` rows each (rows repeat where
    batch is more than there are)."""
    rows = _random_inputs(models.workload(name, 1), MINILM_CALIBRATION if name == "minilm" else CALIBRATION, seed=11)
    samples = max(1, len(rows) // batch)
    return [tuple(np.concatenate(column) for column in zip(*(rows[(s * batch + r) % len(rows)] for r in range(batch))))
            for s in range(samples)]


def measure(name: str, batch: int, budget: timing.Budget) -> dict:
    w = models.workload(name, batch)
    calibration = _calibration(name, batch)
    calls = variants(w, calibration)
    prepared = {v: prepare(w.inputs) for v, (_, prepare) in calls.items()}
    cpu: dict[str, list[float]] = {v: [] for v in calls}

    def timed_call(variant: str, call: Callable, x: tuple) -> None:
        start = time.process_time()
        call(*x)
        cpu[variant].append(time.process_time() - start)

    int8_call, int8_inputs = calls["cerebro int8"][0], prepared["cerebro int8"]
    for _ in range(3):  # warm, then time one call
        start = time.perf_counter()
        int8_call(*int8_inputs)
        wall = time.perf_counter() - start
    by_cpu = wall * 1e3 >= LONG_CALL_MS
    if not by_cpu:
        timed = {v: (lambda call=call, x=prepared[v]: call(*x)) for v, (call, _) in calls.items()}
    else:
        timed = {v: (lambda v=v, call=call: timed_call(v, call, prepared[v])) for v, (call, _) in calls.items()}
    times = timing.sample_interleaved(timed, budget)
    summary = {variant: {**timing.summarize(samples), "cpu_median_ms": float(np.median(cpu[variant] or [np.nan]) * 1e3)}
               for variant, samples in times.items()}
    key = "cpu_median_ms" if by_cpu else "median_ms"
    speedups = {v: s[key] / summary["cerebro int8"][key] for v, s in summary.items() if v != "cerebro int8"}
    print(f"{name} (batch {batch}, one thread), median ms wall (CPU): " + "   ".join(
        f"{v} {s['median_ms']:.3f} ({s['cpu_median_ms']:.3f})" for v, s in summary.items()))
    print(f"  cerebro int8 against ({'CPU' if by_cpu else 'wall'} medians): "
          + "   ".join(f"{v} {x:.2f}x" for v, x in speedups.items()))
    result = {"times": summary, "int8_speedup": speedups, "speedup_of": key, "calibration_samples": len(calibration)}
    if batch != 1:
        return result
    count = MINILM_ACCURACY_INPUTS if name == "minilm" else ACCURACY_INPUTS
    reference = REFERENCE.get(name, "xla f32")
    report = {"random": accuracy(calls, _random_inputs(w, count, seed=12), reference, name in CLASSIFIERS)}
    if name == "minilm":
        report["sentences"] = accuracy(calls, _sentences(w), reference, False)
    for kind, table in report.items():
        for variant, r in table.items():
            top1 = f", top-1 agreement {100 * r['top1_agreement']:.1f}%" if "top1_agreement" in r else ""
            print(f"  {kind} vs {reference}: {variant}: max abs error {r['max_abs_error']:.4f}, mean "
                  f"{r['mean_abs_error']:.5f} (max |output| {r['max_abs_output']:.2f}), cosine mean "
                  f"{r['mean_cosine']:.5f} min {r['min_cosine']:.5f}{top1}")
    return {**result, "accuracy": report, "reference": reference}


def main(argv: list[str] | None = None) -> dict:
    parser = one_cpu.parser(__doc__)
    parser.add_argument("--minilm", action="store_true", help="also MiniLM-L6 (needs torch; minutes)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    parser.add_argument("--batch", default="1,64", help="batch sizes, comma-separated (MiniLM: batch 1 only)")
    args = parser.parse_args(argv)
    one_cpu.pin()
    chosen = [m for m in args.models.split(",") if m] + (["minilm"] if args.minilm else [])
    batches = [int(b) for b in args.batch.split(",") if b]
    results: dict = {"machine": machine.describe(), "threads": 1, "load_before": os.getloadavg(), "models": {}}
    for name in chosen:
        results["models"][name] = {f"batch {batch}": measure(name, batch, one_cpu.budget(args))
                                   for batch in (batches if name != "minilm" else [1])}
    results["load_after"] = os.getloadavg()
    print(f"load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}")
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
