"""Where a Cerebro model spends its time: every node of the optimised graph timed on its own.

    python -m benchmarks.profile transformer --batch 1          # pinned to one CPU, top nodes
    python -m benchmarks.profile mlp --batch 64 --all --repeats 2000
    python -m benchmarks.profile resnet18 --batch 8 --threads 2   # per step: 1 thread, 2 threads, speedup

The model is built for profiling (build(graph, profile=True)): each node after fusion (a matmul with
its epilogue, a fused elementwise chain, ...) is a stage of its own, named in the file with its op and
source location, and the runtime times each stage call (cerebro.profiling, as `cerebroc profile`).
Per node: median microseconds over the repeats, share of the sum, GFLOP/s for matmul/conv (estimated
flops, fused epilogue included) and where it comes from. Stage calls add ~20 ns each, so the sum is
slightly above a whole call's latency.

--threads N (2 or more): where the other threads are lost. A call split across N threads runs steps
(abi.h: each parallel node is a step, a run of serial nodes another, every step ends when all its parts
have returned); the runtime times each step of such calls (LoadedModel.profile(per_step=True)), in
rounds interleaved with the one-thread profile, both unpinned. Per step: the one-thread time (its
nodes' sum), the N-thread time, the speedup and the time lost against a perfect split
(N-thread - 1-thread / N), which counts hand-offs and waits: largest loss first, and per op. On a
loaded machine the N-thread column measures the contention (a worker without a CPU of its own), not
the split: compare only runs at a low load. A build whose batch chunks run in parallel (meta.regions
> 1) takes no steps and is refused.
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
    w = workload(name, batch)
    return profile_graph(graph_of(w, name), tuple(w.inputs), repeats)


def graph_of(w: object, name: str) -> object:
    """A benchmark workload's IR graph (its ONNX import, or its JAX function lowered)."""
    import cerebro

    if w.onnx is not None:
        from cerebro.frontends.onnx import import_onnx

        return import_onnx(w.onnx)
    return cerebro.compile(w.fn, name=name).lower(*w.inputs)


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


def step_stages(table: list[list], parallel: frozenset[str], free: frozenset[str]) -> list[list[int]]:
    """The stages of a profiling build's table that each step of a split call runs (as module._steps
    cuts them: a step ends between two node calls of which one is parallel; free nodes (views) make no
    call), for one chunk."""
    steps: list[list[int]] = [[]]
    previous: str | None = None
    for index, nodes in enumerate(table):
        for node in nodes:
            if node.op in free:
                continue
            if previous is not None and parallel.intersection((node.op, previous)):
                steps.append([])
            if not steps[-1] or steps[-1][-1] != index:
                steps[-1].append(index)
            previous = node.op
    return steps


def profile_threads(graph: object, inputs: tuple, repeats: int, threads: int, rounds: int = 5) -> list[dict]:
    """One row per step of a call split across `threads` threads: its stages, op (the parallel node's;
    a run of serial nodes "serial"), description, estimated flops, and median microseconds on one thread
    (its stages' medians summed) and on `threads` (the step's median), measured in `rounds` interleaved
    rounds of repeats // rounds calls each."""
    import numpy as np

    from cerebro import runtime
    from cerebro.compiler import build

    data = build(graph, profile=True)
    one, split = runtime.load(data), runtime.load(data, threads=threads)
    one(*inputs), split(*inputs)
    each, single, shared = max(repeats // rounds, 1), [], []
    for _ in range(rounds):
        single.append(one.profile(*inputs, repeats=each))
        shared.append(split.profile(*inputs, repeats=each, per_step=True))
    stage_us = np.median(np.concatenate(single), axis=0) / 1e3
    step_us = np.median(np.concatenate(shared), axis=0) / 1e3
    return step_rows(one.profile_table, stage_us, step_us)


def step_rows(table: list[list], stage_us, step_us) -> list[dict]:
    """profile_threads' rows from the stage table, the stages' one-thread and the steps' split medians.
    A batch-chunked build repeats its stages per chunk (the table too), and each chunk's steps; a chunk
    ends with a step of output copies where its last node was parallel."""
    from cerebro.compiler.codegen import PARALLEL
    from cerebro.compiler.ir.plan import VIEW_OPS

    count = len(step_us)
    for chunks in range(1, len(table) + 1):
        size = len(table) // chunks
        if len(table) % chunks or table[:size] * chunks != table:
            continue
        steps = step_stages(table[:size], PARALLEL, VIEW_OPS)
        if count % chunks == 0 and count // chunks - len(steps) in (0, 1):
            steps += [[]] * (count // chunks - len(steps))
            break
    else:
        raise RuntimeError(f"a split call took {count} steps, which the profile table's {len(table)} stages "
                           f"do not give (batch chunks in parallel take no steps)")
    rows = []
    for k in range(count):
        chunk, at = divmod(k, len(steps))
        stages = [chunk * size + s for s in steps[at]]
        nodes = [n for s in stages for n in table[s] if n.op not in VIEW_OPS]
        main = next((n for n in nodes if n.op in PARALLEL), None)
        what = (f"{main.label} {main.shapes}" if main else ", ".join(n.label for n in nodes) or "output copies")
        rows.append({"step": k, "stages": stages, "op": main.op if main else "serial", "what": what,
                     "flops": sum(n.flops for n in nodes), "one_us": float(sum(stage_us[s] for s in stages)),
                     "split_us": float(step_us[k])})
    return rows


def render_threads(rows: list[dict], threads: int, top: int | None, kind=lambda row: row["op"]) -> str:
    """The steps that lose most against a perfect split, then the same per kind of op (kind(row))."""
    one, split = sum(r["one_us"] for r in rows), sum(r["split_us"] for r in rows)
    lost = {id(r): r["split_us"] - r["one_us"] / threads for r in rows}
    lines = [f"one thread: {one:.1f} us (sum of node medians); {threads} threads: {split:.1f} us (sum of step "
             f"medians) over {len(rows)} steps: {one / split if split else 0:.2f}x, a perfect split "
             f"{one / threads:.1f} us", "",
             f"| step | 1 thread us | {threads} threads us | speedup | lost us | node |", "|---|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -lost[id(r)])[:top] if top else rows
    for r in ranked:
        speedup = r["one_us"] / r["split_us"] if r["split_us"] else 0.0
        lines.append(f"| {r['step']} | {r['one_us']:.1f} | {r['split_us']:.1f} | {speedup:.2f} | "
                     f"{lost[id(r)]:.1f} | `{r['what']}` |")
    ops: dict[str, list[float]] = {}
    for r in rows:
        sums = ops.setdefault(kind(r), [0.0, 0.0, 0.0, 0.0])
        sums[0] += r["one_us"]
        sums[1] += r["split_us"]
        sums[2] += lost[id(r)]
        sums[3] += 1
    lines += ["", f"| op | steps | 1 thread us | {threads} threads us | speedup | lost us | share of loss |",
              "|---|---|---|---|---|---|---|"]
    total_lost = sum(max(loss, 0.0) for _, _, loss, _ in ops.values()) or 1.0  # an op faster than a perfect split
    # (a matmul whose halves fit the cores' caches) is not a loss to share out
    for op, (t1, tn, loss, count) in sorted(ops.items(), key=lambda i: -i[1][2]):
        lines.append(f"| {op} | {count:.0f} | {t1:.1f} | {tn:.1f} | {t1 / tn if tn else 0:.2f} | {loss:.1f} | "
                     f"{max(100 * loss / total_lost, 0):.0f}% |")
    return "\n".join(lines)


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
    parser.add_argument("--threads", type=int, default=1,
                        help="2 or more: per step, the time on one thread and on this many, unpinned")
    args = parser.parse_args(argv)
    if args.threads > 1:
        w = workload(args.model, args.batch)
        try:
            rows = profile_threads(graph_of(w, args.model), tuple(w.inputs), args.repeats, args.threads)
        except RuntimeError as error:
            parser.error(str(error))
        cpus = sorted(os.sched_getaffinity(0))
        print(f"{args.model} batch {args.batch}, 1 and {args.threads} threads (CPUs {cpus}), {args.repeats} repeats, "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print(render_threads(rows, args.threads, None if args.all else args.top))
        return
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    rows, weight_bytes = profile(args.model, args.batch, args.repeats)
    floor_us = read_time(weight_bytes) * 1e6 if weight_bytes else None
    print(f"{args.model} batch {args.batch}, one thread (CPU {cpu}), {args.repeats} repeats\n")
    print(render(rows, None if args.all else args.top, weight_bytes, floor_us))


if __name__ == "__main__":
    main()
