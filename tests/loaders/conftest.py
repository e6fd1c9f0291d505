"""Shared fixtures: real Debian packages fetched once per session into a cache dir."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CEREBRO_TEST_CACHE", Path.home() / ".cache" / "cerebro-tests"))


def need(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (see scripts/apt-packages.txt)")


@pytest.fixture(scope="session")
def debian_debs() -> dict[str, Path]:
    """hello (a program) and base-passwd (maintainer scripts), via `apt-get download`, cached."""
    need("apt-get")
    folder = CACHE / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("hello", "base-passwd"):
        found = sorted(folder.glob(f"{name}_*.deb"))
        if not found:
            proc = subprocess.run(["apt-get", "download", "-q", name], cwd=folder, capture_output=True, text=True)
            found = sorted(folder.glob(f"{name}_*.deb"))
            if not found:
                pytest.skip(f"apt-get download {name} failed: {proc.stderr.strip()[-300:]}")
        out[name] = found[-1]
    return out
