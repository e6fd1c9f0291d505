"""python -m benchmarks: Cerebro vs XLA vs ONNX Runtime, one subprocess per configuration.

Each configuration (model, batch, threads) runs in a fresh `python -m benchmarks.worker`
so thread settings take effect at import time. Results go to --out as latest.json,
latest.md and latest.png, rewritten after every configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import RESULTS, contended, machine, report, timing
from benchmarks.models import BACKENDS_FOR, FIXED, WORKLOADS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("mlp", "cnn", "resnet18", "transformer", "minilm", "sgemm", "dispatch")
DEFAULT_BACKENDS = ("cerebro", "xla", "ort")
# One thread for XLA; the second token is the classic TF-era spelling people pair with it.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Tuning overrides on some machines; the sgemm row measures OpenBLAS as it picks its own kernel.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def plan(models: list[str], batches: list[int], threads: list[str]) -> list[tuple[str, int, str]]:
    configs = []
    for model in models:
        if model in FIXED:
            configs.append((model, *FIXED[model]))
            continue
        configs += [(model, batch, t) for batch in batches for t in threads]
    return configs


def environment(model: str, threads: str) -> tuple[dict, str]:
    """The worker's environment and a note saying what was changed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    notes = []
    if threads == "1":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
        env.update(ONE_THREAD_ENV)
    if model == "sgemm":
        removed = [name for name in OPENBLAS_OVERRIDES if env.pop(name, None) is not None]
        notes.append(f"unset for this row: {', '.join(removed)}" if removed else "no OPENBLAS_* overrides were set")
    return env, "; ".join(notes)


def run_config(model: str, batch: int, threads: str, args: argparse.Namespace, logs: Path) -> dict:
    env, env_note = environment(model, threads)
    result_file = logs / f"{model}-b{batch}-t{threads}.json"
    result_file.unlink(missing_ok=True)
    # "cerebro-out" and the like are variants of the backend before the dash
    backends = [b for b in BACKENDS_FOR.get(model, DEFAULT_BACKENDS)
                if b.split("-")[0] in args.backends or b == "numpy"]
    command = [
        sys.executable, "-m", "benchmarks.worker", "--model", model, "--batch", str(batch),
        "--threads", threads, "--backends", ",".join(backends),
        "--budget", json.dumps(args.budget.to_dict()), "--result", str(result_file),
    ]  # fmt: skip
    pin = None
    if threads == "1":
        pin = lambda: os.sched_setaffinity(0, {args.cpu})  # noqa: E731  (what `taskset -c CPU` does)
    failure = None
    with open(logs / f"{model}-b{batch}-t{threads}.log", "w") as log:
        try:
            done = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=pin, timeout=args.timeout)  # fmt: skip
            if done.returncode != 0:
                failure = f"worker exited with status {done.returncode} (see {log.name})"
        except subprocess.TimeoutExpired:
            failure = f"timed out after {args.timeout} s (see {log.name})"
    if failure or not result_file.exists():
        record = {"model": model, "batch": batch, "threads": threads, "backends": {}}
        record["error"] = failure or "worker wrote no result"
    else:
        record = json.loads(result_file.read_text())
    if threads == "1":
        record["pinned_cpu"] = args.cpu
    record["env_note"] = env_note
    return record


def progress_line(index: int, total: int, record: dict, seconds: float) -> str:
    head = f"[{index:>2}/{total}] {record['model']:<11} b={record['batch']:<4} threads={record['threads']:<7}"
    if "error" in record:
        return f"{head} FAILED: {record['error']}"
    parts = []
    for name, result in record["backends"].items():
        if result["status"] == "ok":
            parts.append(f"{name} {result['median_ms']:.3f} ms (diff {result['max_abs_diff']:.0e})")
        else:
            parts.append(f"{name} {result['status']}")
    return f"{head} {' | '.join(parts)}  ({seconds:.0f} s)"


def budget_text(budget: timing.Budget) -> str:
    return (
        f"{budget.warmup} warmup calls, then timed calls until >= {budget.min_repeats} calls and "
        f">= {budget.min_seconds} s, capped at {budget.max_seconds} s (with >= {budget.floor_repeats} calls); "
        f"backends interleaved in {budget.rounds} rounds, each block after {timing.SETTLE_SECONDS} s idle"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats (a smoke run, not for numbers)")
    parser.add_argument("--contended", action="store_true",
                        help="Cerebro threads=1 vs threads=N, idle and with every CPU busy (benchmarks/contended.py; "
                             "--models default mlp,cnn,transformer; writes --out/contended.md)")  # fmt: skip
    parser.add_argument("--models", default=None, help=f"from: {', '.join(WORKLOADS)}")
    parser.add_argument("--zoo", action="store_true",
                        help="the model zoo instead (benchmarks/zoo): torchvision and transformers models exported "
                             "to ONNX once (a one-time ~5 GB PyTorch environment, .venv-zoo), Cerebro vs ORT (and XLA)"
                             "; writes --out/zoo.md, zoo.json, zoo.png")  # fmt: skip
    parser.add_argument("--zoo-models", default=None, help="with --zoo: a comma-separated subset (default: all)")
    parser.add_argument("--zoo-cache", type=Path, default=None,
                        help="with --zoo: where the exported ONNX files are kept (default ~/.cache/cerebro/zoo)")
    parser.add_argument("--batch", default=None, help="batch sizes, comma separated (default 1,64; --zoo: 1,8)")
    parser.add_argument("--threads", default="1,default", help="'1' (pinned to one CPU) and/or 'default'")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="CPU for the 1-thread runs")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    parser.add_argument("--merge", action="store_true",
                        help="keep --out/latest.json's (--zoo: zoo.json's) other configurations; replace those run "
                             "now")  # fmt: skip
    parser.add_argument("--budget", type=json.loads, default=None,
                        help='override sampling, e.g. \'{"min_repeats": 10, "max_seconds": 1}\'')  # fmt: skip
    args = parser.parse_args(argv)
    if args.zoo:
        return _zoo_args(parser, args)
    if args.models is None:
        args.models = ",".join(contended.DEFAULT_MODELS if args.contended else DEFAULT_MODELS)
    args.models = [m for m in args.models.split(",") if m]
    args.batch = args.batch or "1,64"
    unknown = [m for m in args.models if m not in WORKLOADS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    try:
        args.batch = [int(b) for b in args.batch.split(",")]
    except ValueError:
        parser.error(f"--batch takes comma-separated integers, not {args.batch!r}")
    _common_args(parser, args, timing.FULL)
    return args


def _common_args(parser: argparse.ArgumentParser, args: argparse.Namespace, budget: timing.Budget) -> None:
    """Batch sizes, threads, backends and sampling budget, checked alike for the suite and the zoo."""
    if any(b < 1 for b in args.batch):
        parser.error("--batch sizes must be at least 1")
    args.threads = [t.strip() for t in args.threads.split(",")]
    if any(t not in ("1", "default") for t in args.threads):
        parser.error("--threads takes '1' and/or 'default'")
    args.backends = args.backends.split(",")
    budget = timing.QUICK if args.quick else budget
    try:
        args.budget = timing.Budget(**{**budget.to_dict(), **(args.budget or {})})
    except TypeError as error:
        parser.error(f"--budget: {error} (fields: {', '.join(budget.to_dict())})")


def _zoo_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    from benchmarks.zoo import catalog, run

    try:
        args.zoo_models = catalog.select(args.zoo_models)
        args.batch = [int(b) for b in (args.batch or ",".join(map(str, catalog.DEFAULT_BATCHES))).split(",")]
    except ValueError as error:
        parser.error(f"--zoo-models / --batch: {error}")
    args.zoo_cache = args.zoo_cache or run.default_cache()
    _common_args(parser, args, run.BUDGET)
    return args


def _key(record: dict) -> tuple:
    return record["model"], int(record["batch"]), str(record["threads"])


def put(results: list[dict], record: dict) -> None:
    """Add a record, replacing an earlier one for the same configuration in place."""
    for index, old in enumerate(results):
        if _key(old) == _key(record):
            results[index] = record
            return
    results.append(record)


def merge_base(previous: dict, current: dict) -> dict:
    """--merge: keep the previous run's records (re-measured configurations replace theirs). The machine's
    date and commit stay the first run's; each later run's command says its own."""
    if previous["budget"] != current["budget"]:
        raise SystemExit("--merge: the previous run used a different sampling budget; rerun everything instead")
    merged = {**current, "results": previous["results"]}
    now = current["machine"]
    merged["command"] = f"{previous['command']}; then {current['command']} ({now['date']}, commit {now.get('commit')})"
    merged["machine"] = {**now, "date": previous["machine"]["date"], "commit": previous["machine"].get("commit")}
    return merged


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    command = " ".join(["python -m benchmarks", shlex.join(argv if argv is not None else sys.argv[1:])]).strip()
    if args.zoo:
        from benchmarks.zoo import run

        return {"zoo": run.main(args, command)}
    if args.contended:
        budget = args.budget if args.quick or args.budget != timing.FULL else contended.BUDGET
        return {"contended": contended.main(args.models, args.out, command, budget)}
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    configs = plan(args.models, args.batch, args.threads)
    full = {
        "machine": machine.describe(),
        "command": " ".join(["python -m benchmarks", shlex.join(argv if argv is not None else sys.argv[1:])]).strip(),
        "budget": args.budget.to_dict(),
        "budget_text": budget_text(args.budget),
        "results": [],
    }
    if args.merge and (args.out / "latest.json").exists():
        full = merge_base(json.loads((args.out / "latest.json").read_text()), full)
    print(f"{len(configs)} configurations on {full['machine']['cpu']}; results in {args.out}", flush=True)
    for index, (model, batch, threads) in enumerate(configs, 1):
        start = time.perf_counter()
        record = run_config(model, batch, threads, args, logs)
        put(full["results"], record)
        print(progress_line(index, len(configs), record, time.perf_counter() - start), flush=True)
        report.write_json(full, args.out / "latest.json")
        (args.out / "latest.md").write_text(report.markdown(full))
        report.plot(full, args.out / "latest.png")
    print(f"wrote {args.out / 'latest.md'}, latest.json, latest.png")
    return full


if __name__ == "__main__":
    main()
