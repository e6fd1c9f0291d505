"""Batch chunks on zoo models: one build per chunk size (forced through the cache budget) and ONNX Runtime,
timed interleaved in one process, medians in ms (docs/benchmarks.md "Batch chunks").

    taskset -c 1 python -m benchmarks.batch_chunks densenet121 --threads 1 --sizes 8,4,2,1 --workdir /tmp/chunks

Reads the zoo's cached export (~/.cache/cerebro/zoo/<model>/b<batch>.onnx and .npz, made by
`python -m benchmarks --zoo`); builds are kept in --workdir, so a rerun only times.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="8,4,2,1", help="chunk sizes (divisors of the batch)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/cerebro/zoo")
    args = parser.parse_args()

    import onnxruntime as ort

    from cerebro import runtime
    from cerebro.compiler.driver import build
    from cerebro.compiler.passes import batch_chunks, eliminate_dead_nodes, fold_constants
    from cerebro.frontends.onnx import import_onnx

    folder = args.cache / args.model
    data = (folder / f"b{args.batch}.onnx").read_bytes()
    arrays = np.load(folder / f"b{args.batch}.npz")
    inputs = [arrays[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in arrays.files))]
    graph = eliminate_dead_nodes(fold_constants(import_onnx(data)))
    peak = batch_chunks.peak_live_bytes(graph)
    weights = sum(v.nbytes for v in graph.constants())
    print(f"{args.model} b{args.batch}: peak {peak / 2**20:.1f} MB, weights {weights / 2**20:.1f} MB")
    args.workdir.mkdir(parents=True, exist_ok=True)
    calls = {}
    for size in (int(s) for s in args.sizes.split(",")):
        path = args.workdir / f"{args.model}-b{args.batch}-c{size}.cbx"
        if not path.exists():
            batch_chunks.CACHE_BUDGET = peak * size // args.batch
            start = time.process_time()
            path.write_bytes(build(import_onnx(data)))
            print(f"c={size}: built in {time.process_time() - start:.2f} CPU s")
        model = runtime.load(path, threads=args.threads)
        out = model(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else out
        print(f"c={size}: max abs diff from PyTorch {np.abs(out - arrays['expected']).max():.2e}")
        calls[f"c={size}"] = (lambda model=model: model(*inputs))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
    calls["ort"] = lambda: session.run(None, feed)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(args.rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    print(f"{args.model} threads {args.threads} load {os.getloadavg()[0]:.1f}: "
          + " ".join(f"{name} {ms:.1f}" for name, ms in medians.items()))


if __name__ == "__main__":
    main()
