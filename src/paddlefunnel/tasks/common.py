"""What every task needs: a tokenizer and a model (from a directory, a preset or a config) before training, and
the files that travel with a trained model and its run afterwards."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paddle

from ..config import FunnelConfig, preset_names
from ..errors import MissingFileError
from ..io_utils import atomic_write_text
from ..registry import CONFIG_FILE, RESULTS_FILE, VOCABULARY_FILES
from ..tokenizer import FunnelTokenizer

logger = logging.getLogger("paddlefunnel")


def describe_model_argument(model: str) -> str:
    """'directory', 'preset' or 'config' for `--model`; errors name what was looked for."""
    path = Path(model)
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise MissingFileError(f"{path}: not a model directory (no {CONFIG_FILE})")
        return "directory"
    if path.is_file() and path.suffix == ".json":
        return "config"
    if model in preset_names() or f"funnel-transformer/{model}" in preset_names():
        return "preset"
    raise MissingFileError(
        f"--model {model!r}: expected a model directory (ours or HuggingFace's), a config .json file, or a preset "
        f"name ({', '.join(preset_names())})")


def resolve_tokenizer(model: str, tokenizer: str | None = None, train_vocab: int = 0,
                      corpus: Iterable[str] = ()) -> FunnelTokenizer:
    """--tokenizer DIR, else the model directory's own vocabulary, else one trained on `corpus`."""
    if tokenizer:
        return FunnelTokenizer.from_pretrained(tokenizer)
    path = Path(model)
    if path.is_dir() and any((path / name).is_file() for name in VOCABULARY_FILES):
        return FunnelTokenizer.from_pretrained(path)
    if train_vocab > 0:
        texts = [t for t in corpus if t]
        logger.info("training a %d-token WordPiece vocabulary on %d training texts", train_vocab, len(texts))
        return FunnelTokenizer.train_from_iterator(texts, train_vocab, show_progress=False)
    raise MissingFileError(
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
        paddle.seed(seed)
    if kind == "directory":
        return model_class.from_pretrained(model, ignore_mismatched_sizes=ignore_mismatched_sizes, **config_overrides)
    config = FunnelConfig.from_preset(model) if kind == "preset" else FunnelConfig.from_json_file(model)
    config.update({**config_overrides, "vocab_size": len(tokenizer)})
    logger.warning("note: --model %s is a %s: the weights are randomly initialised (training from scratch)",
                   model, kind)
    return model_class(config)


def save_sidecar(directory: Path, tokenizer: FunnelTokenizer, settings_file: str, settings: dict[str, Any]) -> None:
    """The tokenizer and the task's settings travel with every saved model, so it can be evaluated, exported and
    served on its own. Called inside the trainer's temporary directory, which appears whole or not at all."""
    tokenizer.save_pretrained(directory)
    (directory / settings_file).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def write_results(output_dir: str | Path, summary: dict[str, Any]) -> None:
    """A training run's summary, `<output_dir>/eval_results.json`, written atomically."""
    atomic_write_text(Path(output_dir) / RESULTS_FILE, json.dumps(summary, indent=2) + "\n")
