"""README names only commands a user has: Cerebro's own are the scripts `pip install` provides
([project.scripts]); the rest are well-known tools the reader brings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = {"pip", "python", "docker"}  # not Cerebro's to ship


def test_readme_commands_are_installed_scripts_or_known_tools():
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    text = (REPO / "README.md").read_text()
    # `NAME --option ...` or `NAME SUBCOMMAND --option ...` in prose (code blocks run in test_docs.py)
    commands = set(re.findall(r"`([a-z][\w.-]*)(?: [a-z][\w-]*)? --[a-z][^`]*`", text))
    unknown = sorted(commands - scripts - EXTERNAL)
    assert not unknown, f"README.md names commands pip install does not provide: {unknown}"
