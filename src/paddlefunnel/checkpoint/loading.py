"""`from_pretrained` / `save_pretrained`: a model class passes itself in, so this package never imports the
model code (the classes live in `modeling/`, which imports this)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paddle.nn as nn

from ..config import FunnelConfig, preset_names
from ..errors import MissingFileError, WeightsError
from ..registry import CONFIG_FILE, SAFE_WEIGHTS_FILE
from .formats import HF_LAYOUT, PADDLE_LAYOUT, Checkpoint, read_checkpoint, write_safetensors
from .mapping import to_hf_state, to_paddle_state

logger = logging.getLogger("paddlefunnel")


@dataclass
class LoadingInfo:
    """What `from_pretrained` did with each weight, for users deciding whether to fine-tune first."""

    source: str = ""
    layout: str = ""
    missing_keys: list[str] = field(default_factory=list)  # newly initialised: not in the checkpoint
    unexpected_keys: list[str] = field(default_factory=list)  # in the checkpoint, not used by this model
    mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


def _report(info: LoadingInfo, model_name: str) -> None:
    if info.missing_keys:
        logger.warning(
            "%s: %d weights were not in %s and are newly initialised (train before use): %s",
            model_name, len(info.missing_keys), info.source, ", ".join(info.missing_keys),
        )
    if info.unexpected_keys:
        logger.info("%s: %d weights in %s are not used: %s", model_name, len(info.unexpected_keys), info.source,
                    ", ".join(info.unexpected_keys))
    for key, stored, wanted in info.mismatched_keys:
        logger.warning("%s: %s has shape %s in %s but the model needs %s: re-initialised",
                       model_name, key, stored, info.source, wanted)


def load_state_into(model: nn.Layer, checkpoint: Checkpoint, ignore_mismatched_sizes: bool = False) -> LoadingInfo:
    """Check every key and shape first, then copy: a failure leaves the model untouched."""
    tensors = to_paddle_state(checkpoint, model)
    own = model.state_dict()
    info = LoadingInfo(source=str(checkpoint.source), layout=checkpoint.layout)
    # A tied LM head has no weight of its own; the checkpoint's copy (if any) equals the embedding.
    tied = {"lm_head.weight"} if "lm_head.bias" in own and "lm_head.weight" not in own else set()
    info.unexpected_keys = sorted(k for k in tensors if k not in own and k not in tied)
    info.missing_keys = sorted(k for k in own if k not in tensors)
    to_load = {}
    for key, param in own.items():
        if key not in tensors:
            continue
        stored, wanted = tuple(tensors[key].shape), tuple(param.shape)
        if stored != wanted:
            if not ignore_mismatched_sizes:
                raise WeightsError(
                    f"{checkpoint.source}: weight {key!r} has shape {list(stored)} but the model expects "
                    f"{list(wanted)} (pass ignore_mismatched_sizes=True to re-initialise it instead)"
                )
            info.mismatched_keys.append((key, stored, wanted))
            continue
        to_load[key] = tensors[key]
    for key, value in to_load.items():
        own[key].set_value(value.astype(own[key].numpy().dtype, copy=False))
    _report(info, type(model).__name__)
    return info


def _resolve_config(path: Path, config: FunnelConfig | None, overrides: dict[str, Any]) -> FunnelConfig:
    if config is not None:
        if overrides:
            config = config.copy()
            config.update(overrides)
        return config
    config_dir = path if path.is_dir() else path.parent
    config_file = config_dir / CONFIG_FILE
    if not config_file.is_file():
        raise MissingFileError(f"{config_file}: no config.json next to the weights (pass config=FunnelConfig(...))")
    config = FunnelConfig.from_json_file(config_file)
    if overrides:
        config.update(overrides)
    return config


def _missing_source_hint(path: Path, cls: type) -> str:
    """For a preset name given as a path: say that nothing is downloaded and how to get random weights."""
    name = str(path)
    if name in preset_names() or f"funnel-transformer/{name}" in preset_names():
        return (f" ({name!r} is a preset name: nothing is downloaded here; for random weights of that "
                f"architecture use {cls.__name__}(FunnelConfig.from_preset({name!r})))")
    return ""


def load_pretrained(
    cls: type,
    path: str | os.PathLike,
    config: FunnelConfig | None = None,
    ignore_mismatched_sizes: bool = False,
    output_loading_info: bool = False,
    **config_overrides: Any,
):
    """Build `cls` from `path` (our directory, a HF directory, or a weights file with config.json beside it)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such model directory or weights file{_missing_source_hint(path, cls)}")
    config = _resolve_config(path, config, config_overrides)
    checkpoint = read_checkpoint(path)
    model = cls(config)
    info = load_state_into(model, checkpoint, ignore_mismatched_sizes=ignore_mismatched_sizes)
    model.eval()
    return (model, info) if output_loading_info else model


def save_pretrained(model: nn.Layer, directory: str | os.PathLike, hf_format: bool = False) -> None:
    """`config.json` + `model.safetensors`; with hf_format the directory loads in `transformers`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.copy()
    config.architectures = [type(model).__name__]
    if hf_format:
        write_safetensors(to_hf_state(model), directory / SAFE_WEIGHTS_FILE, HF_LAYOUT)
    else:
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        write_safetensors(state, directory / SAFE_WEIGHTS_FILE, PADDLE_LAYOUT)
    config.save_pretrained(directory)
