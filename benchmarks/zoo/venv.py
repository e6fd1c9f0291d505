"""The exporter environment (.venv-zoo): PyTorch, torchvision and transformers live there, not in the
project's .venv (whose torch serves sentence-transformers and must not change). Made once, on demand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-zoo"
PYTHON = VENV / "bin" / "python"
PACKAGES = ("torch==2.14.1", "torchvision==0.29.1", "onnx==1.23.2", "transformers==5.24.0", "onnxscript")
# What the exporter imports; a venv lacking any of them (an interrupted install) is installed again.
IMPORTS = "import torch, torchvision, transformers, onnx"


def ready(python: Path = PYTHON) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", IMPORTS], capture_output=True).returncode == 0


def ensure(log: Path, say=print) -> Path:
    """The exporter's Python, after creating the venv and installing PACKAGES if needed (idempotent:
    pip keeps what is already there)."""
    if ready():
        return PYTHON
    say(f"one-time setup: creating {VENV.relative_to(REPO)} with {', '.join(PACKAGES)} "
        f"(about 5 GB; log: {log})")
    with open(log, "a") as out:
        if not PYTHON.exists():
            subprocess.run([_base_python(), "-m", "venv", str(VENV)],
                           check=True, stdout=out, stderr=subprocess.STDOUT)
        subprocess.run([str(PYTHON), "-m", "pip", "install", *PACKAGES], check=True, stdout=out,
                       stderr=subprocess.STDOUT)
    if not ready():
        raise SystemExit(f"{VENV} was set up but cannot import the exporter's packages; see {log}")
    return PYTHON


def _base_python() -> str:
    """The interpreter the project's venv was made from (a venv made from a venv's python would point at it)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
