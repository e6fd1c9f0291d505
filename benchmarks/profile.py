"""Where a Cerebro model spends its time: every node of the optimised graph timed on its own.

    python -m benchmarks.profile transformer --batch 1          # pinned to one CPU, top nodes
    python -m benchmarks.profile mlp --batch 64 --all --repeats 2000

The model is built for profiling (build(graph, profile=True)): each node after fusion (a matmul with
its epilogue, a fused elementwise chain, ...) is a stage of its own, named in the file with its op and
source location, and the runtime times each stage call (cerebro.profiling, as `cerebroc profile`).
Per node: median microseconds over the repeats, share of the sum, GFLOP/s for matmul/conv (estimated
flops, fused epilogue included) and where it comes from. Stage calls add ~20 ns each, so the sum is
slightly above a whole call's latency.
"""

from __future__ import annotations

import argparse
import os

from benchmarks.floor import read_time
from benchmarks.models import WORKLOADS, workload

RATED_OPS = ("matmul", "conv")  # ops whose flops are mostly multiply-adds: a GFLOP/s figure means something


def profile(name: str, batch: int, repeats: int) -> tuple[list[dict], int]:
    """One row per node (stage index, op, description, source, median and p90 microseconds, estimated
    flops) and the bytes of weights the model reads."""
    import cerebro

    w = workload(name, batch)
    if w.onnx is not None:
        from cerebro.frontends.onnx import import_onnx

        graph = import_onnx(w.onnx)
    else:
        graph = cerebro.compile(w.fn, name=name).lower(*w.inputs)
    return profile_graph(graph, tuple(w.inputs), repeats)


def profile_graph(graph: object, inputs: tuple, repeats: int) -> tuple[list[dict], int]:
    """profile's rows and weight bytes for an IR graph (one thread, in this process) called on inputs."""
    from cerebro import runtime
    from cerebro.compiler import build
    from cerebro.profiling import measure

    model = runtime.load(build(graph, profile=True))
    result = measure(model, inputs, repeats)
    rows = [{"stage": node.index, "op": node.op, "what": f"{node.label} {node.shapes}", "where": node.place,
             "median_us": node.median_us, "p90_us": node.p90_us, "flops": node.flops} for node in result.nodes]
    return rows, model.meta.weights_size


def render(rows: list[dict], top: int | None, weight_bytes: int = 0, floor_us: float | None = None) -> str:
    total = sum(r["median_us"] for r in rows)
    lines = [f"sum of stage medians: {total:.1f} us over {len(rows)} stages"]
    if floor_us is not None:
        lines.append(f"weights: {weight_bytes / 1e6:.2f} MB; merely reading them once takes {floor_us:.1f} us on this "
                     f"core ({weight_bytes / floor_us / 1e3:.0f} GB/s, benchmarks.floor): a floor for batch-1 calls")
    lines += ["",
             "| stage | median us | share | GFLOP/s | node | where |", "|---|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -r["median_us"])[:top] if top else rows
    for r in ranked:
        rated = r["op"] in RATED_OPS and r["median_us"]
        rate = f"{r['flops'] / r['median_us'] / 1e3:.0f}" if rated else ""
        lines.append(f"| {r['stage']} | {r['median_us']:.2f} | {100 * r['median_us'] / total:.1f}% | {rate} | "
                     f"`{r['what']}` | {r['where']} |")
    by_op: dict[str, float] = {}
    for r in rows:
        by_op[r["op"]] = by_op.get(r["op"], 0.0) + r["median_us"]
    lines += ["", "| op | total us | share |", "|---|---|---|"]
    lines += [f"| {op} | {us:.1f} | {100 * us / total:.1f}% |" for op, us in sorted(by_op.items(), key=lambda i: -i[1])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(WORKLOADS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--top", type=int, default=15, help="rows of the slowest nodes (default 15)")
    parser.add_argument("--all", action="store_true", help="every stage in graph order instead of the top ones")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last usable one)")
    args = parser.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    rows, weight_bytes = profile(args.model, args.batch, args.repeats)
    floor_us = read_time(weight_bytes) * 1e6 if weight_bytes else None
    print(f"{args.model} batch {args.batch}, one thread (CPU {cpu}), {args.repeats} repeats\n")
    print(render(rows, None if args.all else args.top, weight_bytes, floor_us))


if __name__ == "__main__":
    main()
