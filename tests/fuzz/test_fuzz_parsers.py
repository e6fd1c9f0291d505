"""Every parser against structure-aware mutations of real files and against the crafted corpus, each
input in a child process under a memory, time and RSS bound: the parser must accept the input or
raise its one error type. Fixed input counts (CEREBRO_FUZZ_SCALE multiplies them); the long run is
tests/fuzz/run_campaign.py (docs/loaders.md, "Fuzzing")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from corpus import TIME_LIMIT_S, write_corpus
from fuzz_batch import Outcome, regenerate, run_inputs
from fuzz_seeds import write_seeds
from fuzz_targets import TARGETS

SCALE = float(os.environ.get("CEREBRO_FUZZ_SCALE", "1"))
STREAM = 0  # the campaign uses other streams: CI always replays the same inputs


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> tuple[Path, dict[str, str], tuple[list[Path], list[str]]]:
    """(folder of seed groups, {group: why it is missing}, (crafted files, generator failures))."""
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    missing = write_seeds(folder)
    return folder, missing, write_corpus(folder)


def describe(outcome: Outcome, seed_dir: Path, save_to: Path, files: list[Path] | None = None) -> str:
    """Each finding with its traceback and the input saved to a file (regenerated from its index)."""
    lines = []
    for finding in outcome.findings[:5]:
        index = finding["index"]
        data = files[index].read_bytes() if files is not None else regenerate(outcome.target, seed_dir, STREAM, index)
        saved = save_to / f"{outcome.target}-{index}.bin"
        saved.write_bytes(data)
        lines.append(f"{finding['kind']} on input {index} ({saved}): {finding['error']}\n{finding['traceback']}")
    return f"{len(outcome.findings)} findings in {outcome.done} inputs of {outcome.target}:\n" + "\n".join(lines)


def usable_groups(target: str, seed_dir) -> None:
    folder, missing, _ = seed_dir
    if all(group in missing for group in TARGETS[target].seeds):
        pytest.skip("; ".join(missing[group] for group in TARGETS[target].seeds))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutated_real_files(target, seed_dir, tmp_path):
    usable_groups(target, seed_dir)
    folder = seed_dir[0]
    outcome = run_inputs(target, folder, stream=STREAM, count=max(1, int(TARGETS[target].ci_inputs * SCALE)))
    assert not outcome.findings, describe(outcome, folder, tmp_path)
    assert outcome.accepted > 0, f"no mutant of {target} parsed: the harness only tests the first check"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_crafted_corpus(target, seed_dir, tmp_path):
    """Every crafted file of issue #10 whose format this parser reads, as it is: a clean refusal or a parse."""
    folder, _, (crafted, generator_failures) = seed_dir
    assert not generator_failures
    files = [path for path in crafted if path.parent.name in TARGETS[target].seeds]
    if not files:
        pytest.skip(f"no crafted {'/'.join(TARGETS[target].seeds)} files (generators: tests/loaders/crafted_*.py)")
    outcome = run_inputs(target, folder, files=files, time_limit=TIME_LIMIT_S)
    assert not outcome.findings, describe(outcome, folder, tmp_path, files)


@pytest.mark.parametrize("target, kind, inputs", [("allocates-2-GiB", "memory", 1), ("sleeps", "slow", 1),
                                                  ("blocks", "hang", 1), ("segfaults", "crash", 2),
                                                  ("raises-KeyError", "exception", 2)])
def test_harness_reports_each_kind_of_failure(target, kind, inputs, tmp_path):
    """A parser that allocates 2 GiB, sleeps, blocks signals and hangs, dies by a signal or raises the wrong error
    is a finding, and the inputs after it still run (the child is restarted past an input that killed it)."""
    files = [tmp_path / f"input{i}" for i in range(inputs)]
    for path in files:
        path.write_bytes(b"x")
    outcome = run_inputs(target, tmp_path, files=files, time_limit=0.2, grace=1)
    assert [(f["index"], f["kind"]) for f in outcome.findings] == [(i, kind) for i in range(inputs)], outcome.findings
    assert outcome.done == inputs


def test_big_real_apk_with_corrupt_central_directory_fails_fast(tmp_path):
    """Debian's framework-res.apk (45 MB, thousands of entries) with the size, then the offset, of its central
    directory set to an extreme in the end record: refused within the per-input time limit."""
    from fuzz_seeds import FRAMEWORK_RES
    if not FRAMEWORK_RES.exists():
        pytest.skip("android-framework-res is not installed")
    files = []
    for field in (slice(-10, -6), slice(-6, -2)):  # end of central directory: cd size, cd offset (no comment)
        data = bytearray(FRAMEWORK_RES.read_bytes())
        data[field] = b"\xff\xff\xff\x7f"
        files.append(tmp_path / f"big{len(files)}.apk")
        files[-1].write_bytes(data)
    outcome = run_inputs("apk", tmp_path, files=files)
    assert not outcome.findings and outcome.accepted == 0, outcome.findings
