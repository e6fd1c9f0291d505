"""Shared fixtures: real Debian packages fetched once per session into a cache dir."""

from pathlib import Path

import pytest
from loader_support import build_apk, download_debs


@pytest.fixture(scope="session")
def debian_debs() -> dict[str, Path]:
    """hello (a program) and base-passwd (maintainer scripts), via `apt-get download`, cached."""
    return download_debs("hello", "base-passwd")


@pytest.fixture(scope="session")
def built_apk(tmp_path_factory) -> Path:
    """A signed APK from the smali sources in data/: smali -> aapt package -> aapt add -> zipalign -> apksigner."""
    return build_apk(tmp_path_factory.mktemp("apk"))
