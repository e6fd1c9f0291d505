"""Sentence similarity with all-MiniLM-L6-v2 compiled by Cerebro.

    python examples/minilm/similarity.py "A man is eating food." "A man eats a meal." "The sky is blue."

Exports the model to ONNX (once, cached next to this file in build/), compiles it
to a .cbx for a fixed batch and sequence length, and prints cosine similarities.
Tokenisation runs in Python with `tokenizers`; the .cbx only sees token ids.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm import Tokenizer, export_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentences", nargs="*", default=["A man is eating food.", "A man is eating a piece of bread.",
                                                          "The girl is carrying a baby.", "A cheetah chases prey."])
    parser.add_argument("--length", type=int, default=64, help="tokens per sentence the model is compiled for")
    parser.add_argument("--build", type=Path, default=Path(__file__).resolve().parent / "build")
    args = parser.parse_args()

    import cerebro
    from cerebro.compiler import build
    from cerebro.frontends.onnx import import_onnx

    args.build.mkdir(parents=True, exist_ok=True)
    onnx_path = args.build / "minilm.onnx"
    if not onnx_path.exists():
        export_onnx(onnx_path)
    batch = len(args.sentences)
    cbx_path = args.build / f"minilm_b{batch}_s{args.length}.cbx"
    if not cbx_path.exists():
        start = time.perf_counter()
        graph = import_onnx(onnx_path, shapes={"batch": batch, "sequence": args.length})
        cbx_path.write_bytes(build(graph, target="host"))
        print(f"compiled {cbx_path.name} in {time.perf_counter() - start:.1f} s")
    model = cerebro.load(cbx_path)

    ids, mask = Tokenizer(args.length)(args.sentences)
    embeddings = model(ids, mask)
    similarity = embeddings @ embeddings.T
    width = max(len(s) for s in args.sentences)
    for i, sentence in enumerate(args.sentences):
        print(f"{sentence:<{width}}  " + "  ".join(f"{similarity[i, j]:+.3f}" for j in range(batch)))
    print(f"most similar to {args.sentences[0]!r}: "
          f"{args.sentences[1 + int(np.argmax(similarity[0, 1:]))]!r}" if batch > 1 else "")


if __name__ == "__main__":
    main()
