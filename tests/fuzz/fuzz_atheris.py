"""Coverage-guided fuzzing of one parser with atheris (libFuzzer): the same table, fix-ups and bounds as
fuzz_batch.py, with libFuzzer's mutations and ours (fuzz_mutate) taking turns, guided by the Python
branches each input reaches in cerebro's parsers.

    .venv/bin/python tests/fuzz/fuzz_atheris.py TARGET CORPUS_DIR [libFuzzer options, e.g. -runs=1000000]

libFuzzer stops at the first finding and writes it to ./crash-* (or timeout-*, oom-*); run_campaign.py
--engine atheris restarts it and counts inputs. CORPUS_DIR starts as the seed folder of the target's
groups and grows with inputs that reach new branches."""

from __future__ import annotations

import random
import resource
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_batch import MEMORY_LIMIT_MB  # noqa: E402
from fuzz_mutate import Seed, mutate  # noqa: E402
from fuzz_targets import MISBEHAVING, TARGETS  # noqa: E402

PARSER_PACKAGES = ["cerebro.loaders", "cerebro.compiler.cbx"]


def instrumented_imports() -> None:
    """Import every parser module under atheris' bytecode instrumentation (the entries import lazily)."""
    import pkgutil
    with atheris.instrument_imports(include=PARSER_PACKAGES):
        import cerebro.compiler.cbx
        import cerebro.loaders
        for package in (cerebro.loaders,):
            for module in pkgutil.iter_modules(package.__path__):
                if module.name not in ("cli", "binfmt", "native_build"):
                    __import__(f"{package.__name__}.{module.name}")
        del cerebro


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5 or not data:
        return atheris.Mutate(data, max_size)
    return mutate(rng, [Seed(data)])[:max_size]


def main() -> None:
    target = {**TARGETS, **MISBEHAVING}[sys.argv[1]]
    allowed = target.allowed()
    instrumented_imports()

    def one_input(data: bytes) -> None:
        if target.fixup is not None:
            data = target.fixup(data)
        try:
            target.entry(data)
        except allowed:
            pass

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_MB << 20, MEMORY_LIMIT_MB << 20))
    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
