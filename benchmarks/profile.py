"""Where a Cerebro model spends its time: every node of the optimised graph timed on its own.

    python -m benchmarks.profile transformer --batch 1          # pinned to one CPU, top nodes
    python -m benchmarks.profile mlp --batch 64 --all --repeats 2000

The model is compiled with stage_flops=0, so each node (after fusion: a matmul with its
epilogue, a fused elementwise chain, ...) is a stage of its own, and the runtime times each
stage call (LoadedModel.profile). Per node: median microseconds over the repeats, share of
the sum, and GFLOP/s for matmul/conv. Stage calls add ~20 ns each, so the sum is slightly
above a whole call's latency.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from benchmarks.floor import read_time
from benchmarks.models import WORKLOADS, workload


def _describe(node) -> str:
    """op[fused body] input shapes -> output shape."""
    from cerebro.compiler.ir.fused import FUSED, ROW_KERNEL

    body = ""
    if node.op in (FUSED, ROW_KERNEL):
        body = "[" + ",".join(inner.op for inner in node.attrs["nodes"]) + "]"
    elif "epilogue" in node.attrs:
        body = "+[" + ",".join(inner.op for inner in node.attrs["epilogue"].nodes) + "]"
    shapes = " ".join("x".join(map(str, v.shape)) or "()" for v in node.inputs)
    return f"{node.op}{body} {shapes} -> {'x'.join(map(str, node.outputs[0].shape))}"


def profile(name: str, batch: int, repeats: int) -> tuple[list[dict], int]:
    """One row per stage (description, median and p90 microseconds, flop estimate for matmul/conv)
    and the bytes of weights the model reads."""
    import cerebro
    from cerebro import runtime
    from cerebro.compiler.build import FLOP_RULES, compile_llvm, lower, split_stages
    from cerebro.compiler.cbx.writer import finish_object
    from cerebro.compiler.targets import resolve_target

    w = workload(name, batch)
    if w.onnx is not None:
        from cerebro.frontends.onnx.importer import import_onnx

        graph = import_onnx(w.onnx)
    else:
        graph = cerebro.compile(w.fn, name=name).lower(*w.inputs)
    optimised, text, meta, weights = lower(graph, stage_flops=0)
    stages = [[piece.node for piece in stage] for stage in split_stages(optimised.nodes, 0, resolve_target("host"))]
    model = runtime.load(finish_object(compile_llvm(text, resolve_target("host")), meta, weights))
    model(*w.inputs)  # warm caches and pages
    times = model.profile(*w.inputs, repeats=repeats) / 1e3
    rows = []
    for k, nodes in enumerate(stages):
        flops = sum(FLOP_RULES[n.op](n) for n in nodes if n.op in ("matmul", "conv"))
        rows.append({"stage": k, "what": "; ".join(_describe(n) for n in nodes if n.op != "reshape") or "reshape",
                     "median_us": float(np.median(times[:, k])), "p90_us": float(np.percentile(times[:, k], 90)),
                     "flops": flops})
    return rows, len(weights)


def render(rows: list[dict], top: int | None, weight_bytes: int = 0, floor_us: float | None = None) -> str:
    total = sum(r["median_us"] for r in rows)
    lines = [f"sum of stage medians: {total:.1f} us over {len(rows)} stages"]
    if floor_us is not None:
        lines.append(f"weights: {weight_bytes / 1e6:.2f} MB; merely reading them once takes {floor_us:.1f} us on this "
                     f"core ({weight_bytes / floor_us / 1e3:.0f} GB/s, benchmarks.floor): a floor for batch-1 calls")
    lines += ["",
             "| stage | median us | share | GFLOP/s | node |", "|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -r["median_us"])[:top] if top else rows
    for r in ranked:
        rate = f"{r['flops'] / r['median_us'] / 1e3:.0f}" if r["flops"] and r["median_us"] else ""
        lines.append(f"| {r['stage']} | {r['median_us']:.2f} | {100 * r['median_us'] / total:.1f}% | {rate} | "
                     f"`{r['what']}` |")
    by_op: dict[str, float] = {}
    for r in rows:
        op = r["what"].split("[")[0].split("+")[0].split(" ")[0]
        by_op[op] = by_op.get(op, 0.0) + r["median_us"]
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
