"""Batch chunks: one build per chunk size, forced past the rules (driver.build's chunk=), and ONNX Runtime,
timed interleaved in one process; says which size passes/batch_chunks.py's rules pick (docs/benchmarks.md
"Batch chunks").

    taskset -c 1 python -m benchmarks.batch_chunks densenet121 --threads 1 --sizes 8,4,2,1 --workdir /tmp/chunks
    python -m benchmarks.batch_chunks transformer --own --batch 64 --threads 2 --sizes 64,16,8 --workdir /tmp/chunks

A zoo model reads the zoo's cached export (~/.cache/cerebro/zoo/<model>/b<batch>.onnx and .npz, made by
`python -m benchmarks --zoo`); --own takes a benchmark model (benchmarks/models.py) traced from JAX (no
ORT row) or its ONNX (MiniLM). Builds are kept in --workdir, so a rerun only times. Each call's wall time
and the process's CPU time are sampled in interleaved rounds; the table gives medians in ms and each
build's time as a fraction of the whole batch's (c = N). CPU time is the steadier number on a loaded
machine with one thread; with two it adds both threads' time, so read the wall column there too.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _zoo(args: argparse.Namespace):
    """(graph maker, inputs, expected output, ONNX bytes) of a cached zoo export."""
    from cerebro.frontends.onnx import import_onnx

    folder = args.cache / args.model
    data = (folder / f"b{args.batch}.onnx").read_bytes()
    arrays = np.load(folder / f"b{args.batch}.npz")
    inputs = [arrays[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in arrays.files))]
    return (lambda: import_onnx(data)), inputs, arrays["expected"], data


def _own(args: argparse.Namespace):
    """The same for a benchmark model, traced from JAX or imported from its ONNX (MiniLM); expected: the
    first build's output."""
    from benchmarks.models import workload
    from cerebro.frontends.jax import trace
    from cerebro.frontends.onnx import import_onnx

    w = workload(args.model, args.batch)
    if w.onnx is not None:
        return (lambda: import_onnx(w.onnx)), list(w.inputs), None, w.onnx
    return (lambda: trace(w.fn, *w.inputs).graph), list(w.inputs), None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--own", action="store_true", help="a benchmarks/models.py model, not a zoo export")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="8,4,2,1", help="chunk sizes (divisors of the batch; the batch: whole)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/cerebro/zoo")
    args = parser.parse_args()

    from cerebro import runtime
    from cerebro.compiler import driver
    from cerebro.compiler.passes import batch_chunks, eliminate_dead_nodes, fold_constants

    make, inputs, expected, onnx_bytes = (_own if args.own else _zoo)(args)
    graph = eliminate_dead_nodes(fold_constants(driver._private_copy(make())))
    peak = batch_chunks.peak_live_bytes(graph)
    weights = sum(v.nbytes for v in graph.constants())
    picked = batch_chunks.chunk_batch(graph).graph.inputs[0].shape[0]
    print(f"{args.model} b{args.batch}: peak {peak / 2**20:.1f} MB, weights {weights / 2**20:.1f} MB, "
          f"rules pick c={picked} (budget {batch_chunks.CACHE_BUDGET / 2**20:.0f} MB)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    arrays, inputs = inputs, [runtime.aligned_empty(a.shape, a.dtype) for a in inputs]  # as the runtime takes them
    for buffer, a in zip(inputs, arrays):
        buffer[...] = a
    calls, whole = {}, None
    for size in (int(s) for s in args.sizes.split(",")):
        path = args.workdir / f"{args.model}-b{args.batch}-c{size}.cbx"
        if not path.exists():
            start = time.process_time()
            path.write_bytes(driver.build(make(), chunk=size))  # forced: the rules are bypassed
            print(f"c={size}: built in {time.process_time() - start:.2f} CPU s")
        model = runtime.load(path, threads=args.threads)
        out = model(*inputs)
        out = np.asarray(out[0] if isinstance(out, (tuple, list)) else out)
        if expected is None and whole is None:
            whole = out
        reference = expected if expected is not None else whole
        print(f"c={size}: max abs diff from {'PyTorch' if expected is not None else 'the first build'} "
              f"{np.abs(out - reference).max():.2e}")
        calls[f"c={size}"] = (lambda model=model: model(*inputs))
    if onnx_bytes is not None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        feed = {i.name: np.asarray(x) for i, x in zip(session.get_inputs(), inputs)}
        calls["ort"] = lambda: session.run(None, feed)
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    names = list(calls)
    for round_ in range(args.rounds):  # each round starts one build later: the call after ORT's runs on its
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # cache, 4.5% slower (MiniLM)
            call = calls[name]
            w0, c0 = time.perf_counter(), time.process_time()
            call()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    base = f"c={args.batch}" if f"c={args.batch}" in calls else next(iter(calls))
    med = {name: (float(np.median(wall[name])) * 1e3, float(np.median(cpu[name])) * 1e3) for name in calls}
    print(f"{args.model} b{args.batch} threads {args.threads} load {os.getloadavg()[0]:.1f} rounds {args.rounds} "
          f"(rules pick c={picked}; ratios to {base}):")
    for name, (w, c) in med.items():
        print(f"  {name:>6}: wall {w:8.2f} ms ({w / med[base][0]:.3f})  cpu {c:8.2f} ms ({c / med[base][1]:.3f})")


if __name__ == "__main__":
    main()
