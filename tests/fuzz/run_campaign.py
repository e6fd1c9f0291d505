"""The long fuzz run: --inputs structure-aware mutants per parser (default 10^6), in chunks of child
processes under the same bounds as the CI tests, one process at a time (niced: it shares the machine).

    .venv/bin/python tests/fuzz/run_campaign.py --out /tmp/fuzz-campaign [--parser tar ...] [--inputs 1000000]

Writes OUT/seeds (real files + crafted corpus), OUT/progress.jsonl (one line per chunk),
OUT/summary.json (inputs, accepted, findings per parser) and OUT/findings/<parser>/<index>.bin
(each finding's input, regenerated from its index) with <index>.txt (the traceback)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import is_mutation_seed, write_corpus  # noqa: E402
from fuzz_batch import RSS_LIMIT_MB, TIME_LIMIT_S, WALL_FACTOR, regenerate, run_inputs  # noqa: E402
from fuzz_seeds import write_seeds  # noqa: E402
from fuzz_targets import TARGETS  # noqa: E402

CAMPAIGN_STREAM = 1  # CI replays stream 0


def save_findings(out: Path, parser: str, seed_dir: Path, findings: list[dict]) -> None:
    folder = out / "findings" / parser
    folder.mkdir(parents=True, exist_ok=True)
    for finding in findings:
        index = finding["index"]
        (folder / f"{index}.bin").write_bytes(regenerate(parser, seed_dir, CAMPAIGN_STREAM, index))
        (folder / f"{index}.txt").write_text(f"{finding['kind']}: {finding['error']}\n{finding['traceback']}\n")


def _totals(parser: str, engine: str) -> dict:
    return {"parser": parser, "engine": engine, "inputs": 0, "accepted": 0, "findings": 0, "kinds": {},
            "seconds": 0.0, "max_rss_mb": 0}


def _log(out: Path, totals: dict) -> None:
    with open(out / "progress.jsonl", "a") as progress:
        progress.write(json.dumps(totals) + "\n")


def campaign(parser: str, out: Path, seed_dir: Path, inputs: int, chunk: int, nice: int, first: int) -> dict:
    """The plain engine: chunks of fuzz_batch children over stream CAMPAIGN_STREAM, from input `first` on."""
    totals = {**_totals(parser, "plain"), "first_input": first}
    started = time.monotonic()
    for start in range(first, first + inputs, chunk):
        outcome = run_inputs(parser, seed_dir, stream=CAMPAIGN_STREAM, start=start,
                             count=min(chunk, first + inputs - start), nice=nice)
        save_findings(out, parser, seed_dir, outcome.findings)
        totals["inputs"] += outcome.done
        totals["accepted"] += outcome.accepted
        totals["findings"] += len(outcome.findings)
        for finding in outcome.findings:
            key = f"{finding['kind']}: {finding['error'][:120]}"
            totals["kinds"][key] = totals["kinds"].get(key, 0) + 1
        totals["max_rss_mb"] = max(totals["max_rss_mb"], outcome.max_rss_mb)
        totals["seconds"] = round(time.monotonic() - started, 1)
        _log(out, totals)
    return totals


LIBFUZZER_FINDINGS = {"MemoryError": "memory", "Uncaught Python exception": "exception", "deadly signal": "crash",
                      "timeout": "slow", "out-of-memory": "rss"}  # first match wins


def atheris_campaign(parser: str, out: Path, seed_dir: Path, inputs: int, chunk: int, nice: int, first: int) -> dict:
    """The coverage-guided engine: fuzz_atheris.py restarted after each finding until `inputs` have run.
    `accepted` is not known here; libFuzzer's corpus (OUT/corpus/<parser>) holds the inputs that found new code."""
    totals = {**_totals(parser, "atheris"), "accepted": None}
    corpus, findings = out / "corpus" / parser, out / "findings" / parser
    findings.mkdir(parents=True, exist_ok=True)
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for seed in (p for group in TARGETS[parser].seeds for p in (seed_dir / group).glob("*")):
            if is_mutation_seed(seed):
                (corpus / f"{seed.parent.name}-{seed.name}").write_bytes(seed.read_bytes())
    started = time.monotonic()
    while totals["inputs"] < inputs:
        runs = min(chunk, inputs - totals["inputs"])
        proc = subprocess.run(["nice", "-n", str(nice), sys.executable, str(HERE / "fuzz_atheris.py"), parser,
                               str(corpus), f"-runs={runs}", f"-timeout={int(TIME_LIMIT_S * WALL_FACTOR)}",
                               f"-rss_limit_mb={RSS_LIMIT_MB}", f"-artifact_prefix={findings}/",
                               "-print_final_stats=1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        done = re.findall(r"stat::number_of_executed_units: (\d+)", proc.stdout)
        totals["inputs"] += int(done[-1]) if done else max(map(int, re.findall(r"^#(\d+)", proc.stdout, re.M)),
                                                            default=0)
        peak = re.findall(r"stat::peak_rss_mb:\s+(\d+)", proc.stdout)
        totals["max_rss_mb"] = max(totals["max_rss_mb"], int(peak[-1]) if peak else 0)
        if proc.returncode != 0:
            kind = next((k for text, k in LIBFUZZER_FINDINGS.items() if text in proc.stdout), "crash")
            totals["findings"] += 1
            totals["kinds"][kind] = totals["kinds"].get(kind, 0) + 1
            (findings / f"libfuzzer-{totals['findings']}.txt").write_text(proc.stdout[-20000:])
            if not done and totals["findings"] > 20:
                raise RuntimeError(f"{parser}: libFuzzer keeps failing before any input:\n{proc.stdout[-3000:]}")
        totals["seconds"] = round(time.monotonic() - started, 1)
        _log(out, totals)
    return totals


ENGINES = {"plain": campaign, "atheris": atheris_campaign}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parser", action="append", choices=sorted(TARGETS), help="default: every parser")
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--first-input", type=int, default=0, help="plain engine: continue an earlier run's stream")
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="plain",
                        help="atheris: coverage-guided (pip install atheris); plain: fuzz_batch's mutation loop")
    args = parser.parse_args()
    seed_dir = args.out / "seeds"
    shutil.rmtree(seed_dir, ignore_errors=True)  # no stale crafted files from an earlier corpus
    missing = write_seeds(seed_dir)
    for problem in write_corpus(seed_dir)[1]:
        print(problem, file=sys.stderr)
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.parser or sorted(TARGETS):
        if all(group in missing for group in TARGETS[name].seeds):
            print(f"{name}: skipped ({missing})", flush=True)
            continue
        key = f"{args.engine}:{name}" + (f"@{args.first_input}" if args.first_input else "")
        summary[key] = ENGINES[args.engine](name, args.out, seed_dir, args.inputs, args.chunk, args.nice,
                                            args.first_input)
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary[key]), flush=True)
    return 1 if any(s["findings"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
