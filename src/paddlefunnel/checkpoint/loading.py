"""`from_pretrained` / `save_pretrained`: a model class passes itself in, so this package never imports the
model code (the classes live in `modeling/`, which imports this)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn

from ..config import FunnelConfig, preset_key
from ..config_layouts import require_config_file
from ..errors import MissingFileError, WeightsError
from ..hub import MODEL_PARTS, WEIGHTS, resolve_pretrained
from ..registry import SAFE_WEIGHTS_FILE
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


# Paddle keeps bfloat16 as uint16 bit patterns in numpy (what paddle.save writes into a .pdparams).
PADDLE_BFLOAT16_STORAGE = np.dtype(np.uint16)
_NUMPY_DTYPES = {paddle.float32: np.dtype(np.float32), paddle.float16: np.dtype(np.float16),
                 paddle.float64: np.dtype(np.float64)}


def _numpy_dtype(param: paddle.Tensor) -> np.dtype:
    """The numpy dtype a parameter's values are set from (without copying the parameter out for common dtypes)."""
    known = _NUMPY_DTYPES.get(param.dtype)
    return known if known is not None else param.numpy().dtype


def _check_dtype(key: str, stored: np.dtype, wanted: np.dtype, source: Path | str) -> None:
    """A floating-point parameter takes floating-point values (or Paddle's bfloat16 bits); anything else is
    not a weight of this model."""
    if wanted.kind == "f" and stored.kind != "f" and stored != PADDLE_BFLOAT16_STORAGE:
        raise WeightsError(f"{source}: weight {key!r} is stored as {stored}, expected floating-point values "
                           f"(the model keeps it as {wanted})")


def _cast(value: np.ndarray, wanted: np.dtype) -> tuple[np.ndarray, str | None]:
    """`value` in the parameter's dtype, and the stored dtype's name when a cast was needed."""
    if value.dtype == wanted:
        return value, None
    if value.dtype == PADDLE_BFLOAT16_STORAGE and wanted.kind == "f":  # exact: bfloat16 is float32's top half
        widened = (value.astype(np.uint32) << 16).view(np.float32)
        return widened.astype(wanted, copy=False), "bfloat16"
    return value.astype(wanted), str(value.dtype)


def _report_casts(casts: Counter, wanted: set[str], source: Path | str, model_name: str) -> None:
    """One note for the whole file: weights stored in another precision (float64, float16 in PaddleNLP files)."""
    if casts:
        stored = ", ".join(f"{count} as {dtype}" for dtype, count in sorted(casts.items()))
        logger.warning("%s: %s stores weights in another precision (%s); cast to the model's %s",
                       model_name, source, stored, "/".join(sorted(wanted)))


def load_state_into(model: nn.Layer, checkpoint: Checkpoint, ignore_mismatched_sizes: bool = False) -> LoadingInfo:
    """Check every key, shape and dtype first, then copy: a failure leaves the model untouched. Weights stored
    in another floating-point precision are cast to the model's, with one note naming the file and dtypes."""
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
        _check_dtype(key, tensors[key].dtype, _numpy_dtype(param), checkpoint.source)
        to_load[key] = tensors[key]
    casts: Counter = Counter()
    cast_to: set[str] = set()
    for key, value in to_load.items():
        wanted_dtype = _numpy_dtype(own[key])
        value, stored_dtype = _cast(value, wanted_dtype)
        if stored_dtype is not None:
            casts[stored_dtype] += 1
            cast_to.add(str(wanted_dtype))
        own[key].set_value(value)
    _report_casts(casts, cast_to, checkpoint.source, type(model).__name__)
    _report(info, type(model).__name__)
    return info


def _resolve_config(path: Path, config: FunnelConfig | None, overrides: dict[str, Any]) -> FunnelConfig:
    if config is not None:
        if overrides:
            config = config.copy()
            config.update(overrides)
        return config
    config_dir = path if path.is_dir() else path.parent
    # config.json (ours, HF's, PaddleNLP >= 2.5) or PaddleNLP's legacy model_config.json, read by FunnelConfig.
    config_file = require_config_file(config_dir, hint=" next to the weights; pass config=FunnelConfig(...)")
    config = FunnelConfig.from_json_file(config_file)
    if overrides:
        config.update(overrides)
    return config


def _missing_source_hint(name: str, cls: type) -> str:
    """For a preset name that resolves to no weights: how to get random weights of that architecture instead."""
    if preset_key(name) is not None:
        return (f" ({name!r} is also a preset name: for random weights of that architecture use "
                f"{cls.__name__}(FunnelConfig.from_preset({name!r})))")
    return ""


def load_pretrained(
    cls: type,
    path: str | os.PathLike,
    config: FunnelConfig | None = None,
    ignore_mismatched_sizes: bool = False,
    output_loading_info: bool = False,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    **config_overrides: Any,
):
    """Build `cls` from `path`: our directory, a HF directory, a weights file with config.json beside it, or a
    hub repo id (`org/name`, at `revision`; from the HuggingFace cache, else downloaded: see `hub`)."""
    try:
        path = resolve_pretrained(path, revision=revision, parts=(WEIGHTS,) if config is not None else MODEL_PARTS,
                                  cache_dir=cache_dir, local_files_only=local_files_only)
    except MissingFileError as err:
        raise MissingFileError(f"{err}{_missing_source_hint(str(path), cls)}") from None
    if not path.exists():
        raise MissingFileError(f"{path}: no such model directory or weights file"
                               f"{_missing_source_hint(str(path), cls)}")
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
