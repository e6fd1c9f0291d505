"""all-MiniLM-L6-v2 end to end: PyTorch -> ONNX -> Cerebro .cbx; embeddings match
sentence-transformers (PyTorch) with cosine similarity >= 0.9999."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cerebro.compiler import build
from cerebro.frontends.onnx import OnnxImportError, import_onnx
from cerebro.runtime import load

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A cheetah is running behind its prey.",
]
LENGTH = 32
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "minilm"


@pytest.fixture(scope="module")
def compiled(minilm_onnx):
    graph = import_onnx(minilm_onnx, shapes={"batch": len(SENTENCES), "sequence": LENGTH})
    return load(build(graph, target="host"))


def test_minilm_matches_pytorch(compiled, minilm_onnx) -> None:
    from sentence_transformers import SentenceTransformer

    sys.path.insert(0, str(EXAMPLES))
    from minilm import Tokenizer, model_dir

    reference = SentenceTransformer(str(model_dir()), device="cpu").encode(SENTENCES)
    ids, mask = Tokenizer(LENGTH)(SENTENCES)
    (ours,) = compiled(ids, mask)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert ours.shape == (len(SENTENCES), 384)
    assert np.all(cosine >= 0.9999), cosine
    # the semantics survive too: the two sentences about eating are the closest pair
    sim = ours @ ours.T
    np.fill_diagonal(sim, -1)
    assert np.unravel_index(np.argmax(sim), sim.shape) in ((0, 1), (1, 0))


def test_minilm_needs_its_symbolic_dims(minilm_onnx) -> None:
    with pytest.raises(OnnxImportError, match="symbolic dimension 'batch'.*input_ids"):
        import_onnx(minilm_onnx)
