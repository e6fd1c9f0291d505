"""Export zoo models to ONNX with random weights; runs in the exporter environment (.venv-zoo: torch,
torchvision, transformers), never in the project's. For each model and batch it writes, under the cache:
<name>/b<batch>.onnx, b<batch>.npz (the inputs and PyTorch's output, the reference) or, when the export
fails, b<batch>.error (one line). Files already there are kept: an export happens once.

    .venv-zoo/bin/python -m benchmarks.zoo.export --cache DIR --models resnet18,bert --batches 1,8

Prints one line per export, `@ <name> b<batch> <ok|cached|error> <seconds> [reason]`, which the runner
turns into progress (the TorchScript exporter prints graphs to stdout too: the "@ " tells them apart).
"""

from __future__ import annotations

import argparse
import io
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from benchmarks.zoo.catalog import GPT2_SEQ, TEXT_SEQ, WHISPER_FRAMES, ZooModel, select

SEED = 0
OPSET = 17
# Configs built locally (nothing is downloaded); the defaults of these classes are the base-size models.
CONFIGS = {"BertModel": ("BertConfig", {"max_position_embeddings": 512}),
           "DistilBertModel": ("DistilBertConfig", {}),
           "GPT2Model": ("GPT2Config", {"use_cache": False, "n_positions": max(GPT2_SEQ, 1024)}),
           "ViTModel": ("ViTConfig", {}),
           "T5EncoderModel": ("T5Config", {"use_cache": False}),
           "WhisperEncoder": ("WhisperConfig", {"max_source_positions": WHISPER_FRAMES // 2})}
assert TEXT_SEQ <= 512
# Without a mask, GPT-2 looks for packed sequences with torch.diff, which the ONNX exporter lacks; an
# all-ones mask (a constant of the input's shape) is what a caller with one unpadded sequence passes.
MASK_GIVEN = {"GPT2Model"}


def paths(cache: Path, name: str, batch: int) -> dict[str, Path]:
    """Where one export's files go (the runner reads the same names)."""
    folder = cache / name
    return {kind: folder / f"b{batch}.{kind}" for kind in ("onnx", "npz", "error")}


def torch_module(model: ZooModel):
    """The PyTorch module with random weights, in eval mode, returning one tensor."""
    import torch

    torch.manual_seed(SEED)
    if model.family == "torchvision":
        import torchvision

        return getattr(torchvision.models, model.builder)(weights=None).eval()
    import transformers

    config_name, overrides = CONFIGS[model.builder]
    config = getattr(transformers, config_name)(**overrides)
    config._attn_implementation = "eager"  # sdpa/flex paths do not trace to ONNX with the TorchScript exporter
    if model.builder == "WhisperEncoder":
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        inner = WhisperEncoder(config)
    else:
        inner = getattr(transformers, model.builder)(config)

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            extra = {}
            if model.builder in MASK_GIVEN:
                extra["attention_mask"] = torch.ones_like(inputs[0])
            return self.inner(*inputs, return_dict=True, **extra).last_hidden_state

    return LastHiddenState().eval()


def inputs(model: ZooModel, batch: int) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    arrays = []
    for (_, _, dtype, bound), full in zip(model.inputs, model.input_shapes(batch)):
        if bound is None:
            arrays.append(rng.standard_normal(full, dtype=np.float32).astype(dtype))
        else:
            arrays.append(rng.integers(0, bound, full).astype(dtype))
    return arrays


def export_one(module, model: ZooModel, batch: int, files: dict[str, Path]) -> None:
    import torch

    arrays = inputs(model, batch)
    tensors = tuple(torch.from_numpy(a) for a in arrays)
    names = [name for name, *_ in model.inputs]
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # not under no_grad: there nn.MultiheadAttention takes a fused fast path
        warnings.simplefilter("ignore")  # (aten::_native_multi_head_attention) that has no ONNX export
        torch.onnx.export(module, tensors, buffer, input_names=names, output_names=["output"],
                          opset_version=OPSET, dynamo=False)
    with torch.no_grad():
        expected = module(*tensors).numpy()
    files["onnx"].parent.mkdir(parents=True, exist_ok=True)
    np.savez(files["npz"], expected=expected, **{f"input_{i}": a for i, a in enumerate(arrays)})
    partial = files["onnx"].with_suffix(".onnx.partial")
    partial.write_bytes(buffer.getvalue())
    partial.rename(files["onnx"])  # last: an .onnx present means the export finished


def export(cache: Path, model: ZooModel, batches: list[int]) -> None:
    module = None
    for batch in batches:
        files = paths(cache, model.name, batch)
        start = time.perf_counter()
        if files["onnx"].exists() and files["npz"].exists():
            print(f"@ {model.name} b{batch} cached 0", flush=True)
            continue
        try:
            module = module or torch_module(model)
            export_one(module, model, batch, files)
            files["error"].unlink(missing_ok=True)
            print(f"@ {model.name} b{batch} ok {time.perf_counter() - start:.1f}", flush=True)
        except Exception as error:  # one model's failure is a row of the report, not the end of the run
            line = f"export failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
            files["error"].parent.mkdir(parents=True, exist_ok=True)
            files["error"].write_text(line + "\n\n" + traceback.format_exc())
            print(f"@ {model.name} b{batch} error {time.perf_counter() - start:.1f} {line}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--models", default=None)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args(argv)
    for model in select(args.models):
        export(args.cache, model, [int(b) for b in args.batches.split(",")])


if __name__ == "__main__":
    main()
