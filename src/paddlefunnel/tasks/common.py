"""What every task needs before training: a tokenizer and a model, from a directory, a preset or a config."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import CONFIG_NAME, FunnelConfig, preset_names
from ..tokenizer import FunnelTokenizer

logger = logging.getLogger("paddlefunnel")

VOCAB_FILES = ("tokenizer.json", "vocab.txt")


def describe_model_argument(model: str) -> str:
    """'directory', 'preset' or 'config' for `--model`; errors name what was looked for."""
    path = Path(model)
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{path}: not a model directory (no {CONFIG_NAME})")
        return "directory"
    if path.is_file() and path.suffix == ".json":
        return "config"
    if model in preset_names() or f"funnel-transformer/{model}" in preset_names():
        return "preset"
    raise FileNotFoundError(
        f"--model {model!r}: expected a model directory (ours or HuggingFace's), a config .json file, or a preset "
        f"name ({', '.join(preset_names())})")


def resolve_tokenizer(model: str, tokenizer: str | None = None, train_vocab: int = 0,
                      corpus: Iterable[str] = ()) -> FunnelTokenizer:
    """--tokenizer DIR, else the model directory's own vocabulary, else one trained on `corpus`."""
    if tokenizer:
        return FunnelTokenizer.from_pretrained(tokenizer)
    path = Path(model)
    if path.is_dir() and any((path / name).is_file() for name in VOCAB_FILES):
        return FunnelTokenizer.from_pretrained(path)
    if train_vocab > 0:
        texts = [t for t in corpus if t]
        print(f"training a {train_vocab}-token WordPiece vocabulary on {len(texts)} training texts")
        return FunnelTokenizer.train_from_iterator(texts, train_vocab, show_progress=False)
    raise FileNotFoundError(
        f"no vocabulary for --model {model!r}: pass --tokenizer DIR (with vocab.txt or tokenizer.json), or "
        "--train-vocab SIZE to learn one from the training data")


def build_model(model_class, model: str, tokenizer: FunnelTokenizer, ignore_mismatched_sizes: bool = False,
                seed: int | None = None, **config_overrides: Any):
    """A model of `model_class` from a directory (pretrained), or randomly initialised from a preset/config.

    With `seed`, Paddle's generator is seeded first, so that the random initialisation (of the whole model, or of
    the heads a pretrained body lacks) is the same in every run with that seed.
    """
    kind = describe_model_argument(model)
    if seed is not None:
        import paddle

        paddle.seed(seed)
    if kind == "directory":
        return model_class.from_pretrained(model, ignore_mismatched_sizes=ignore_mismatched_sizes, **config_overrides)
    config = FunnelConfig.from_preset(model) if kind == "preset" else FunnelConfig.from_json_file(model)
    config.update({**config_overrides, "vocab_size": len(tokenizer)})
    print(f"note: --model {model} is a {kind}: the weights are randomly initialised (training from scratch)")
    return model_class(config)
