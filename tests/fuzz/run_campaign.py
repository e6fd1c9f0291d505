"""The long fuzz run: --inputs structure-aware mutants per parser (default 10^6), in chunks of child
processes under the same bounds as the CI tests, one process at a time (niced: it shares the machine).

    .venv/bin/python tests/fuzz/run_campaign.py --out /tmp/fuzz-campaign [--parser tar ...] [--inputs 1000000]

Writes OUT/seeds (real files + crafted corpus), OUT/progress.jsonl (one line per chunk),
OUT/summary.json (inputs, accepted, findings per parser) and OUT/findings/<parser>/<index>.bin
(each finding's input, regenerated from its index) with <index>.txt (the traceback)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus  # noqa: E402
from fuzz_batch import regenerate, run_inputs  # noqa: E402
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


def campaign(parser: str, out: Path, seed_dir: Path, inputs: int, chunk: int, nice: int) -> dict:
    totals = {"parser": parser, "inputs": 0, "accepted": 0, "findings": 0, "kinds": {}, "seconds": 0.0,
              "max_rss_mb": 0}
    started = time.monotonic()
    for start in range(0, inputs, chunk):
        outcome = run_inputs(parser, seed_dir, stream=CAMPAIGN_STREAM, start=start, count=min(chunk, inputs - start),
                             nice=nice)
        save_findings(out, parser, seed_dir, outcome.findings)
        totals["inputs"] += outcome.done
        totals["accepted"] += outcome.accepted
        totals["findings"] += len(outcome.findings)
        for finding in outcome.findings:
            key = f"{finding['kind']}: {finding['error'][:120]}"
            totals["kinds"][key] = totals["kinds"].get(key, 0) + 1
        totals["max_rss_mb"] = max(totals["max_rss_mb"], outcome.max_rss_mb)
        totals["seconds"] = round(time.monotonic() - started, 1)
        with open(out / "progress.jsonl", "a") as progress:
            progress.write(json.dumps(totals) + "\n")
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parser", action="append", choices=sorted(TARGETS), help="default: every parser")
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args()
    seed_dir = args.out / "seeds"
    missing = write_seeds(seed_dir)
    write_corpus(seed_dir)
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.parser or sorted(TARGETS):
        if all(group in missing for group in TARGETS[name].seeds):
            print(f"{name}: skipped ({missing})", flush=True)
            continue
        summary[name] = campaign(name, args.out, seed_dir, args.inputs, args.chunk, args.nice)
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary[name]), flush=True)
    return 1 if any(s["findings"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
