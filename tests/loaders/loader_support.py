"""Helpers shared by the loader tests (a uniquely named module: every tests/ folder has a conftest)."""

import os
import shutil
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CEREBRO_TEST_CACHE", Path.home() / ".cache" / "cerebro-tests"))
DATA = Path(__file__).parent / "data"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")


def need(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (see scripts/apt-packages.txt)")
