"""One zoo configuration (model, batch, threads) in its own process, as benchmarks.worker is for the
suite's models: the parent sets the thread environment and pinning before this process starts.

Cerebro compiles the ONNX file once per (model, batch) in a run: the first configuration (threads=1,
pinned: the one-core compile time) writes <workdir>/<model>-b<batch>.cbx with its compile phases timed,
later ones load that file. Lines starting with "@ " on stdout say what the worker is doing (progress).

    python -m benchmarks.zoo.worker --model resnet18 --batch 1 --threads 1 --cache DIR --workdir DIR --result F
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import timing
from benchmarks.backends import BACKENDS, Prepared
from benchmarks.models import Workload
from benchmarks.worker import prepare, time_all
from benchmarks.zoo.catalog import BY_NAME
from benchmarks.zoo.export import paths
from benchmarks.zoo.phases import PhaseClock
from benchmarks.zoo.twins import TWINS


class ExportFailed(RuntimeError):
    """The exporter left an error file instead of an ONNX file."""


def onnx_workload(cache: Path, name: str, batch: int) -> Workload:
    """The exported model with the inputs it was exported with and PyTorch's output as reference."""
    files = paths(cache, name, batch)
    if not files["onnx"].exists():
        reason = files["error"].read_text().splitlines()[0] if files["error"].exists() else "no ONNX file in cache"
        raise ExportFailed(reason)
    arrays = np.load(files["npz"])
    inputs = tuple(arrays[f"input_{i}"] for i in range(len(BY_NAME[name].inputs)))
    return Workload(f"{name}-b{batch}", None, inputs, onnx=files["onnx"].read_bytes(), reference=arrays["expected"],
                    reference_name="PyTorch", notes=[BY_NAME[name].note] if BY_NAME[name].note else [])


def cerebro_shared(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """The ONNX file imported and built once per run (phases timed), then loaded with `threads` threads."""
    from cerebro import runtime
    from cerebro.compiler.driver import build_sealed
    from cerebro.compiler.progress import phase, reporting
    from cerebro.frontends.onnx import import_onnx

    cbx, failed = workdir / f"{w.name}.cbx", workdir / f"{w.name}.failed"
    if failed.exists():
        raise RuntimeError(f"(compiled in an earlier row) {failed.read_text()}")
    clock, info = PhaseClock(), {}
    start = time.perf_counter()
    with reporting(clock):
        if not cbx.exists():
            try:
                with phase("import"):
                    graph = import_onnx(w.onnx)
                info["nodes"] = len(graph.nodes)
                sealed = build_sealed(graph, target="host")
            except Exception as error:
                from benchmarks.backends import describe_error

                failed.write_text(describe_error(error))
                raise
            with phase("write file"):
                sealed.write(cbx.with_suffix(".partial"))
                cbx.with_suffix(".partial").rename(cbx)
            info["compiled_here"] = True
            # as a process that compiled and exited would: the file's pieces and the graph's weights (500 MB
            # for gpt2) are no longer held while the .cbx loads, whose copy then reuses their pages
            del sealed, graph
        with phase("load"):
            loaded = runtime.load(cbx, threads=threads or runtime.usable_cpus())
    seconds = time.perf_counter() - start
    inputs = [runtime.aligned_empty(a.shape, a.dtype) for a in w.inputs]
    for buffer, a in zip(inputs, w.inputs):
        buffer[...] = a

    def call():
        return loaded(*inputs)

    call.pool_stats = loaded.pool_stats  # run() records how the timed calls ran: shared or alone
    info.update(phases=clock.seconds, cbx_bytes=cbx.stat().st_size, threads=loaded.threads)
    return Prepared(seconds, call, lambda: call()[0], info)


BACKENDS.setdefault("cerebro-zoo", cerebro_shared)  # worker.prepare finds backends by name in this table


def pool_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """LoadedModel.pool_stats counts between two snapshots: a 2-thread row whose calls ran alone (the pool
    found sharing slower: a competing load) says so, instead of only looking slow."""
    return {way: after[way] - before[way] for way in after}


def _say(what: str) -> None:
    print(f"@ {what}", flush=True)


def run(name: str, batch: int, threads: int | None, cache: Path, workdir: Path, budget: timing.Budget,
        with_xla: bool = True) -> dict:
    record = {"model": name, "batch": batch, "threads": threads or "default",
              "cpus_available": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0], "backends": {}}
    start = time.perf_counter()
    results, ready = record["backends"], {}
    w = onnx_workload(cache, name, batch)
    record.update(reference="PyTorch", notes=w.notes, input_shapes=[a.shape for a in w.inputs])
    for backend, shown in (("cerebro-zoo", "cerebro"), ("ort", "ort")):
        _say(f"compiling ({shown})")
        results[shown], prepared = prepare(backend, w, threads, w.reference, workdir)
        if prepared is not None:
            ready[shown] = prepared
    twin = TWINS.get(name)
    if twin is not None and with_xla:
        _say("compiling (xla)")
        builder, note = twin
        flax_workload = builder(batch)
        import jax.numpy as jnp

        ref = np.asarray(flax_workload.fn(*(jnp.asarray(a) for a in flax_workload.inputs)))
        results["xla"], prepared = prepare("xla", flax_workload, threads, ref, workdir)
        results["xla"]["twin"] = note
        if prepared is not None:
            ready["xla"] = prepared
    _say("timing")
    pool_stats = getattr(ready["cerebro"].call, "pool_stats", None) if "cerebro" in ready else None
    before = pool_stats() if pool_stats else None
    time_all(results, ready, budget)
    if before is not None:  # threads >= 2: how many timed calls (warm-up included) the pool ran alone
        results["cerebro"]["pool"] = pool_delta(before, pool_stats())
    for shown, result in results.items():  # tracebacks go to the log, the record keeps the one-line reason
        if "traceback" in result:
            print(f"{shown}:\n{result.pop('traceback')}", file=sys.stderr)
    record["wall_s"] = time.perf_counter() - start
    record["load_after"] = os.getloadavg()[0]
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", default="default", help="1 or 'default'")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="where the run's .cbx files are shared")
    parser.add_argument("--budget", default="{}", help="JSON of benchmarks.timing.Budget fields (default: FULL)")
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    threads = None if args.threads == "default" else int(args.threads)
    budget = timing.Budget(**json.loads(args.budget))
    try:
        record = run(args.model, args.batch, threads, args.cache, args.workdir, budget, not args.no_xla)
    except ExportFailed as error:
        record = {"model": args.model, "batch": args.batch, "threads": args.threads, "backends": {},
                  "error": str(error)}
    args.result.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
