"""What every task needs: a tokenizer and a model before training (pretrained weights from a directory or a
hub repo, or -- asked for explicitly with `init="random"` -- random weights of a preset's, a config file's or a
checkpoint's shape), and the files that travel with a trained model and its run afterwards."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paddle

from ..config import FunnelConfig, preset_key, preset_names
from ..config_layouts import require_config_file
from ..errors import InputError, MissingFileError
from ..hub import CONFIG, MODEL_PARTS, TOKENIZER, is_repo_id, resolve_pretrained
from ..io_utils import atomic_write_text
from ..registry import CONFIG_FILE, RESULTS_FILE, VOCABULARY_FILES, WEIGHTS_FILES
from ..tokenizer import FunnelTokenizer

logger = logging.getLogger("paddlefunnel")

PRETRAINED, RANDOM = "pretrained", "random"
INIT_CHOICES = (PRETRAINED, RANDOM)


def _is_preset(name: str) -> bool:
    return preset_key(name) is not None


def describe_model_argument(model: str, init: str = PRETRAINED) -> str:
    """What `--model` names: 'directory', 'hub' (a repo id), or -- only with init="random" -- 'preset' or
    'config'. A pretrained name never gives random weights: a preset or config file without init="random" is
    an error that says to add it."""
    if init not in INIT_CHOICES:
        raise InputError(f"init must be one of {', '.join(INIT_CHOICES)}, got {init!r}")
    path = Path(model)
    if path.is_dir():
        return "directory"
    if path.is_file() and path.suffix == ".json":
        if init == RANDOM:
            return "config"
        raise InputError(f"--model {model}: a config file holds no weights; add --init random to train from "
                         "randomly initialised weights of this shape (or pass a model directory or hub name for "
                         "pretrained weights)")
    if init == RANDOM and _is_preset(model):
        return "preset"  # offline, from the built-in table, even where a hub repo has the same name
    if not path.exists() and is_repo_id(model):
        return "hub"
    if _is_preset(model):
        raise InputError(f"--model {model!r} is a preset name, which has no weights: add --init random to train "
                         "from randomly initialised weights of that shape, or pass a hub name (e.g. "
                         f"funnel-transformer/{model.split('/')[-1]}) or model directory for pretrained weights")
    raise MissingFileError(
        f"--model {model!r}: expected a model directory (ours, HuggingFace's or PaddleNLP's) or a hub name "
        f"(org/name); with --init random also a config .json file or a preset name ({', '.join(preset_names())})")


def _resolve_hub(model: str, revision: str | None, parts: tuple[str, ...]) -> Path:
    """The repo's local snapshot; a name that is also a preset says how to get random weights instead."""
    try:
        return resolve_pretrained(model, revision=revision, parts=parts)
    except MissingFileError as err:
        if not _is_preset(model):
            raise
        raise MissingFileError(f"{err} ({model!r} is also a preset name: add --init random to train from randomly "
                               "initialised weights of that shape)") from None


def resolve_tokenizer(model: str, tokenizer: str | None = None, train_vocab: int = 0,
                      corpus: Iterable[str] = (), init: str = PRETRAINED,
                      revision: str | None = None) -> FunnelTokenizer:
    """--tokenizer (a directory or hub name), else the model's own vocabulary (its directory or hub repo),
    else one trained on `corpus`. `revision` is the model's: it applies to --tokenizer only when that names the
    same repo."""
    kind = describe_model_argument(model, init)
    if kind == "directory":  # a model that cannot be loaded fails now, not after the vocabulary is trained
        check_model_directory(Path(model), init)
    if tokenizer:
        return FunnelTokenizer.from_pretrained(tokenizer, revision=revision if tokenizer == model else None)
    path = None
    if kind == "directory":
        path = Path(model)
    elif kind == "hub":  # the config first: a repo that is not a Funnel model fails before anything else
        path = _resolve_hub(model, revision, (CONFIG, TOKENIZER))
    if path is not None and any((path / name).is_file() for name in VOCABULARY_FILES):
        return FunnelTokenizer.from_pretrained(path)
    if train_vocab > 0:
        texts = [t for t in corpus if t]
        logger.info("training a %d-token WordPiece vocabulary on %d training texts", train_vocab, len(texts))
        return FunnelTokenizer.train_from_iterator(texts, train_vocab, show_progress=False)
    raise MissingFileError(
        f"no vocabulary for --model {model!r}: pass --tokenizer DIR (with vocab.txt or tokenizer.json) or hub "
        "name, or --train-vocab SIZE to learn one from the training data")


def check_model_directory(path: Path, init: str = PRETRAINED) -> None:
    """Cheap checks that `build_model` can use the directory `path` (a readable config, and weights unless
    init="random"), so that a wrong --model fails before any slow work (vocabulary training, features)."""
    require_config_file(path)
    FunnelConfig.from_pretrained(path)  # a config that does not parse says so, naming the file
    if init == PRETRAINED and not any((path / name).is_file() for name in WEIGHTS_FILES):
        raise MissingFileError(f"--model {path}: no weights ({', '.join(WEIGHTS_FILES)}); pass a model directory, "
                               "or add --init random to train from randomly initialised weights of its config's shape")


def _random_init_config(model: str, kind: str, revision: str | None) -> FunnelConfig:
    """The shape to initialise randomly: a preset, a config file, or the config of a checkpoint (local or hub)."""
    if kind == "preset":
        return FunnelConfig.from_preset(model)
    if kind == "config":
        return FunnelConfig.from_json_file(model)
    if kind == "hub":
        return FunnelConfig.from_json_file(_resolve_hub(model, revision, (CONFIG,)) / CONFIG_FILE)
    return FunnelConfig.from_pretrained(model)


def build_model(model_class, model: str, tokenizer: FunnelTokenizer, ignore_mismatched_sizes: bool = False,
                seed: int | None = None, init: str = PRETRAINED, revision: str | None = None,
                **config_overrides: Any):
    """A model of `model_class`: pretrained weights from a directory or hub repo (init="pretrained"), or, when
    asked for with init="random", randomly initialised in the shape of a preset, config file or checkpoint.

    With `seed`, Paddle's generator is seeded first, so that the random initialisation (of the whole model, or of
    the heads a pretrained body lacks) is the same in every run with that seed.
    """
    kind = describe_model_argument(model, init)
    if seed is not None:
        paddle.seed(seed)
    if init == PRETRAINED:
        source = _resolve_hub(model, revision, MODEL_PARTS) if kind == "hub" else model
        return model_class.from_pretrained(source, ignore_mismatched_sizes=ignore_mismatched_sizes, **config_overrides)
    config = _random_init_config(model, kind, revision)
    config.update({**config_overrides, "vocab_size": len(tokenizer)})
    logger.info("--init random: %s weights randomly initialised in the shape of %s %s", model_class.__name__,
                {"preset": "preset", "config": "config file", "directory": "the model in", "hub": "hub model"}[kind],
                model)
    return model_class(config)


def save_sidecar(directory: Path, tokenizer: FunnelTokenizer, settings_file: str, settings: dict[str, Any]) -> None:
    """The tokenizer and the task's settings travel with every saved model, so it can be evaluated, exported and
    served on its own. Called inside the trainer's temporary directory, which appears whole or not at all."""
    tokenizer.save_pretrained(directory)
    (directory / settings_file).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def write_results(output_dir: str | Path, summary: dict[str, Any]) -> None:
    """A training run's summary, `<output_dir>/eval_results.json`, written atomically."""
    atomic_write_text(Path(output_dir) / RESULTS_FILE, json.dumps(summary, indent=2) + "\n")
