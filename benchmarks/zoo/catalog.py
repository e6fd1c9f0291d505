"""Which models the zoo holds and what they take as input. Plain Python (no numpy, no torch): the
exporter (PyTorch environment) and the runner (the project's environment) both read it."""

from __future__ import annotations

from dataclasses import dataclass

IMAGE = ("pixel_values", (3, 224, 224), "float32", None)  # (name, shape after batch, dtype, int bound)


@dataclass(frozen=True)
class ZooModel:
    """One architecture: where PyTorch builds it (`family`, `builder`), its inputs per batch row, and its
    Flax twin for XLA (a name in benchmarks.zoo.twins) if one is installed."""

    name: str
    family: str  # "torchvision" or "transformers"
    builder: str  # torchvision.models.<builder>, or the transformers model class
    inputs: tuple[tuple[str, tuple[int, ...], str, int | None], ...] = (IMAGE,)
    note: str = ""
    twin: str | None = None

    def input_shapes(self, batch: int) -> list[tuple[int, ...]]:
        return [(batch, *shape) for _, shape, _, _ in self.inputs]


TEXT_SEQ = 128
GPT2_SEQ = 32  # as issue 14's first measurement
WHISPER_FRAMES = 200  # 2 s of audio (the encoder takes 2 x max_source_positions mel frames)


def _ids(vocab: int, seq: int) -> tuple:
    return (("input_ids", (seq,), "int64", vocab),)


MODELS: tuple[ZooModel, ...] = (
    ZooModel("squeezenet1_1", "torchvision", "squeezenet1_1"),
    ZooModel("shufflenet_v2_x1_0", "torchvision", "shufflenet_v2_x1_0"),
    ZooModel("mobilenet_v3_large", "torchvision", "mobilenet_v3_large"),
    ZooModel("densenet121", "torchvision", "densenet121"),
    ZooModel("resnet18", "torchvision", "resnet18", twin="resnet18"),
    ZooModel("resnet50", "torchvision", "resnet50", twin="resnet50"),
    ZooModel("efficientnet_b0", "torchvision", "efficientnet_b0"),
    ZooModel("convnext_tiny", "torchvision", "convnext_tiny"),
    ZooModel("regnet_y_400mf", "torchvision", "regnet_y_400mf"),
    ZooModel("vit_b_16", "torchvision", "vit_b_16"),
    ZooModel("swin_t", "torchvision", "swin_t"),
    ZooModel("bert", "transformers", "BertModel", _ids(30522, TEXT_SEQ), f"bert-base config, seq {TEXT_SEQ}"),
    ZooModel("distilbert", "transformers", "DistilBertModel", _ids(30522, TEXT_SEQ),
             f"distilbert-base config, seq {TEXT_SEQ}"),
    ZooModel("gpt2", "transformers", "GPT2Model", _ids(50257, GPT2_SEQ), f"gpt2 (124M) config, seq {GPT2_SEQ}"),
    ZooModel("vit", "transformers", "ViTModel", (IMAGE,), "vit-base-patch16-224 config"),
    ZooModel("t5_encoder", "transformers", "T5EncoderModel", _ids(32128, TEXT_SEQ), f"t5-small config, seq {TEXT_SEQ}"),
    ZooModel("whisper_encoder", "transformers", "WhisperEncoder", (("input_features", (80, WHISPER_FRAMES),
             "float32", None),), f"whisper-tiny config, {WHISPER_FRAMES} mel frames"),
)
BY_NAME = {m.name: m for m in MODELS}
DEFAULT_BATCHES = (1, 8)


def select(names: str | None) -> list[ZooModel]:
    """The models named in a comma-separated list (all when None); an unknown name raises ValueError."""
    if not names:
        return list(MODELS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown zoo model(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in wanted]
