"""Weight files: formats, HuggingFace <-> Paddle key and layout mapping, loading and saving.

Parameter names are the reference's, so the only layout difference is `nn.Linear`: PyTorch stores
[out, in], Paddle [in, out]. Which tensors are Linear weights is read off the model, never guessed.
safetensors is the default everywhere; pickle-based files go through restricted loaders only.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn

from .config import CONFIG_NAME, FunnelConfig
from .io_utils import atomic_path

logger = logging.getLogger("paddlefunnel")

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PADDLE_WEIGHTS_NAME = "model.pdparams"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"
# safetensors metadata tells which layout a file holds; HF writes {"format": "pt"}.
PADDLE_LAYOUT = "paddle"
HF_LAYOUT = "pt"
BODY_PREFIX = "funnel."
# Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


class WeightsError(ValueError):
    """A weights file or directory that cannot be loaded as asked; the message names file and key."""


@dataclass
class LoadingInfo:
    """What `from_pretrained` did with each weight, for users deciding whether to fine-tune first."""

    source: str = ""
    layout: str = ""
    missing_keys: list[str] = field(default_factory=list)  # newly initialised: not in the checkpoint
    unexpected_keys: list[str] = field(default_factory=list)  # in the checkpoint, not used by this model
    mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- reading
def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None


def _read_sharded_safetensors(index_path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        shards = sorted(set(index["weight_map"].values()))
    except (json.JSONDecodeError, KeyError, AttributeError) as err:
        raise WeightsError(f"{index_path}: not a safetensors index (expected a 'weight_map' object: {err})") from None
    tensors: dict[str, np.ndarray] = {}
    metadata: dict[str, str] = {}
    for shard in shards:
        shard_tensors, metadata = _read_safetensors(index_path.parent / shard)
        tensors.update(shard_tensors)
    return tensors, metadata


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else: no arbitrary callables, so no code execution."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _read_pdparams(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            state = _NumpyOnlyUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
        raise WeightsError(f"{path}: not a plain .pdparams state dict ({err})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of arrays, got {type(state).__name__}")
    # paddle.save adds a name-mapping entry that is not a weight.
    return {k: np.asarray(v) for k, v in state.items() if "@@" not in k}


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"{path}: reading PyTorch .bin checkpoints needs torch; install the extra: "
            "pip install 'paddlefunnel[convert]' (or convert the checkpoint to safetensors)"
        ) from None
    try:
        # weights_only=True: torch's restricted unpickler, tensors and containers only.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad or unsafe file
        raise WeightsError(f"{path}: cannot be read as a PyTorch state dict ({err})") from None
    return {k: v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy() for k, v in state.items()}


@dataclass
class Checkpoint:
    tensors: dict[str, np.ndarray]
    layout: str  # PADDLE_LAYOUT or HF_LAYOUT
    source: Path


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the weights in a model directory or a single weights file, noting their layout."""
    path = Path(path)
    if path.is_dir():
        for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, PADDLE_WEIGHTS_NAME, TORCH_WEIGHTS_NAME):
            if (path / name).is_file():
                return read_checkpoint(path / name)
        raise FileNotFoundError(
            f"{path}: no weights found (looked for {SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, "
            f"{PADDLE_WEIGHTS_NAME}, {TORCH_WEIGHTS_NAME})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.name.endswith(".index.json"):
        tensors, metadata = _read_sharded_safetensors(path)
    elif path.suffix == ".safetensors":
        tensors, metadata = _read_safetensors(path)
    elif path.suffix == ".pdparams":
        return Checkpoint(_read_pdparams(path), PADDLE_LAYOUT, path)
    elif path.suffix in (".bin", ".pt", ".pth"):
        return Checkpoint(_read_torch_bin(path), HF_LAYOUT, path)
    else:
        raise WeightsError(f"{path}: unknown weights format (expected .safetensors, .pdparams or .bin)")
    layout = PADDLE_LAYOUT if metadata.get("format") == PADDLE_LAYOUT else HF_LAYOUT
    return Checkpoint(tensors, layout, path)


# ------------------------------------------------------------------------------------------- mapping
def linear_weight_names(model: nn.Layer) -> set[str]:
    """State-dict keys of `nn.Linear` weights: the tensors stored transposed between the frameworks."""
    return {
        f"{name}.weight" if name else "weight"
        for name, layer in model.named_sublayers(include_self=True)
        if isinstance(layer, nn.Linear)
    }


def _normalise_key(key: str) -> str:
    for old, new in _LEGACY_SUFFIXES.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def _align_prefix(tensors: dict[str, np.ndarray], expected_keys: set[str]) -> dict[str, np.ndarray]:
    """Add or strip the body prefix `funnel.` so a body checkpoint fits a head model and vice versa."""
    wants_prefix = any(k.startswith(BODY_PREFIX) for k in expected_keys)
    has_prefix = any(k.startswith(BODY_PREFIX) for k in tensors)
    if wants_prefix and not has_prefix:
        return {BODY_PREFIX + k: v for k, v in tensors.items()}
    if has_prefix and not wants_prefix:
        return {k[len(BODY_PREFIX) :]: v for k, v in tensors.items() if k.startswith(BODY_PREFIX)} | {
            k: v for k, v in tensors.items() if not k.startswith(BODY_PREFIX)
        }
    return tensors


def to_paddle_state(checkpoint: Checkpoint, model: nn.Layer) -> dict[str, np.ndarray]:
    """Checkpoint tensors renamed and laid out for `model` (extra keys are kept for reporting)."""
    tensors = {_normalise_key(k): v for k, v in checkpoint.tensors.items()}
    tensors = _align_prefix(tensors, set(model.state_dict()))
    if checkpoint.layout == HF_LAYOUT:
        linear = linear_weight_names(model)
        tensors = {k: np.ascontiguousarray(v.T) if k in linear and v.ndim == 2 else v for k, v in tensors.items()}
    return tensors


def to_hf_state(model: nn.Layer) -> dict[str, np.ndarray]:
    """The model's weights with the reference's names and PyTorch layout (for `transformers`)."""
    linear = linear_weight_names(model)
    state = {}
    for key, value in model.state_dict().items():
        array = value.numpy()
        state[key] = np.ascontiguousarray(array.T) if key in linear else np.ascontiguousarray(array)
    return state


# ------------------------------------------------------------------------------------------- loading
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
    config_file = config_dir / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no config.json next to the weights (pass config=FunnelConfig(...))")
    config = FunnelConfig.from_json_file(config_file)
    if overrides:
        config.update(overrides)
    return config


def load_pretrained(
    cls,
    path: str | os.PathLike,
    config: FunnelConfig | None = None,
    ignore_mismatched_sizes: bool = False,
    output_loading_info: bool = False,
    **config_overrides: Any,
):
    """Build `cls` from `path` (our directory, a HF directory, or a weights file with config.json beside it)."""
    path = Path(path)
    if not path.exists():
        hint = ""
        from .config import preset_names

        if str(path) in preset_names() or f"funnel-transformer/{path}" in preset_names():
            hint = (
                f" ({str(path)!r} is a preset name: nothing is downloaded here; for random weights of that "
                f"architecture use {cls.__name__}(FunnelConfig.from_preset({str(path)!r})))"
            )
        raise FileNotFoundError(f"{path}: no such model directory or weights file{hint}")
    config = _resolve_config(path, config, config_overrides)
    checkpoint = read_checkpoint(path)
    model = cls(config)
    info = load_state_into(model, checkpoint, ignore_mismatched_sizes=ignore_mismatched_sizes)
    model.eval()
    return (model, info) if output_loading_info else model


# -------------------------------------------------------------------------------------------- saving
def write_safetensors(tensors: dict[str, np.ndarray], target: Path, layout: str) -> None:
    from safetensors.numpy import save

    payload = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"format": layout})
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)


def save_pretrained(model: nn.Layer, directory: str | os.PathLike, hf_format: bool = False) -> None:
    """`config.json` + `model.safetensors`; with hf_format the directory loads in `transformers`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.copy()
    config.architectures = [type(model).__name__]
    if hf_format:
        write_safetensors(to_hf_state(model), directory / SAFE_WEIGHTS_NAME, HF_LAYOUT)
    else:
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        write_safetensors(state, directory / SAFE_WEIGHTS_NAME, PADDLE_LAYOUT)
    config.save_pretrained(directory)


def save_pdparams(model: nn.Layer, target: str | os.PathLike) -> None:
    """Paddle's native pickle format, for tools that want it; loading it back uses the restricted reader."""
    buffer = io.BytesIO()
    paddle.save(model.state_dict(), buffer)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())


# ---------------------------------------------------------------------------------------- conversion
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def model_class_for(config: FunnelConfig):
    """The class named by `config.architectures` (what the checkpoint was saved as), else FunnelModel."""
    from .modeling import MODEL_CLASSES

    for name in config.architectures or []:
        if name in MODEL_CLASSES:
            return MODEL_CLASSES[name]
    return MODEL_CLASSES["FunnelModel"]


def convert_checkpoint(source: str | os.PathLike, target: str | os.PathLike, to: str = "paddle",
                       overwrite: bool = False) -> Path:
    """Rewrite a checkpoint directory in Paddle layout (`to="paddle"`) or for `transformers` (`to="hf"`).

    Tokenizer files travel along. The target appears only when complete (built in a temporary directory).
    """
    import shutil

    from .io_utils import atomic_directory

    if to not in ("paddle", "hf"):
        raise ValueError(f"--to must be 'paddle' or 'hf', got {to!r}")
    source, target = Path(source), Path(target)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such model directory or weights file")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target}: exists and is not empty (use --overwrite to replace it)")
    source_dir = source if source.is_dir() else source.parent
    config = FunnelConfig.from_pretrained(source_dir) if (source_dir / CONFIG_NAME).is_file() else None
    if config is None:
        raise FileNotFoundError(f"{source_dir / CONFIG_NAME}: no config.json next to the weights")
    model = model_class_for(config).from_pretrained(source)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, hf_format=(to == "hf"))
        for name in TOKENIZER_FILES:
            if (source_dir / name).is_file():
                shutil.copy2(source_dir / name, tmp / name)
    return target
