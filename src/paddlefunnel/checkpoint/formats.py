"""Weight files on disk: reading every format users bring, writing safetensors (and .pdparams on request).

safetensors is the default everywhere. Pickle-based files go through restricted loaders only: `.pdparams`
with an unpickler that admits numpy arrays and dicts and nothing else, `.bin` (torch.save's zip format) with
`torch_pickle`'s numpy-only reader, whether torch is installed or not (torch's `weights_only=True` only for
the legacy pre-1.6 format, which needs torch).
A `Checkpoint` records which layout its tensors are in (Paddle or PyTorch); `mapping` converts between them.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_bytes

from ..config_layouts import written_by_paddlenlp
from ..errors import MissingFileError, WeightsError
from ..hub import shard_names
from ..io_utils import atomic_path
from ..registry import (
    PADDLE_WEIGHTS_FILE,
    SAFE_WEIGHTS_FILE,
    SAFE_WEIGHTS_INDEX_FILE,
    TORCH_WEIGHTS_FILE,
    WEIGHTS_FILES,
)
from .torch_pickle import ZIP_FORMAT as TORCH_ZIP_FORMAT
from .torch_pickle import read_torch_zip, torch_save_format

# safetensors metadata tells which layout a file holds; HF writes {"format": "pt"}.
PADDLE_LAYOUT = "paddle"
HF_LAYOUT = "pt"
# PaddleNLP's safetensors (safe_serialization) say {"format": "np"} and hold Paddle's layout; other numpy
# writers use "np" too, so it counts as Paddle's only beside a PaddleNLP config.
PADDLENLP_SAFETENSORS_FORMAT = "np"


@dataclass
class Checkpoint:
    tensors: dict[str, np.ndarray]
    layout: str  # PADDLE_LAYOUT or HF_LAYOUT
    source: Path | str


# ------------------------------------------------------------------------------------------- reading
def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of one safetensors file."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None


def _read_sharded_safetensors(index_path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    tensors: dict[str, np.ndarray] = {}
    metadata: dict[str, str] = {}
    for shard in shard_names(index_path, str(index_path)):
        shard_tensors, metadata = read_safetensors(index_path.parent / shard)
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
    """A torch.save state dict: the zip format with our numpy-only reader (torch or not), the legacy format
    with torch's restricted loader when torch is installed."""
    if torch_save_format(path) == TORCH_ZIP_FORMAT:
        return read_torch_zip(path)
    return _read_legacy_torch_bin(path)


def _read_legacy_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch  # optional: the `convert` extra
    except ImportError:
        raise WeightsError(
            f"{path}: saved in PyTorch's legacy format (torch < 1.6, not a zip archive), which only torch reads; "
            "install torch (pip install 'paddlefunnel[convert]'), or re-save the file once where torch is "
            f"installed, which rewrites it in the zip format: python -c \"import torch; "
            f"torch.save(torch.load('{path}', weights_only=True), '{path}')\""
        ) from None
    try:
        # weights_only=True: torch's restricted unpickler, tensors and containers only.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad or unsafe file
        raise WeightsError(f"{path}: cannot be read as a PyTorch state dict ({err})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(state).__name__} "
                           "(a training checkpoint? save model.state_dict() alone)")
    return {k: v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy() for k, v in state.items()}


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the weights in a model directory or a single weights file, noting their layout."""
    path = Path(path)
    if path.is_dir():
        for name in WEIGHTS_FILES:
            if (path / name).is_file():
                return read_checkpoint(path / name)
        raise MissingFileError(f"{path}: no weights found (looked for {', '.join(WEIGHTS_FILES)})")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such weights file")
    if path.name.endswith(".index.json"):
        tensors, metadata = _read_sharded_safetensors(path)
    elif path.suffix == ".safetensors":
        tensors, metadata = read_safetensors(path)
    elif path.suffix == ".pdparams":
        return Checkpoint(_read_pdparams(path), PADDLE_LAYOUT, path)
    elif path.suffix in (".bin", ".pt", ".pth"):
        return Checkpoint(_read_torch_bin(path), HF_LAYOUT, path)
    else:
        raise WeightsError(f"{path}: unknown weights format (expected .safetensors, .pdparams or .bin)")
    return Checkpoint(tensors, _safetensors_layout(metadata, path), path)


def _safetensors_layout(metadata: dict[str, str], path: Path) -> str:
    """Which layout a safetensors file holds, from its metadata (and, for "np", the directory's config)."""
    found = metadata.get("format")
    if found == PADDLE_LAYOUT or (found == PADDLENLP_SAFETENSORS_FORMAT and written_by_paddlenlp(path.parent)):
        return PADDLE_LAYOUT
    return HF_LAYOUT


# -------------------------------------------------------------------------------------------- writing
def write_safetensors(tensors: dict[str, np.ndarray], target: Path, layout: str) -> None:
    """`tensors` as a safetensors file marked with `layout`, written atomically."""
    payload = safetensors_bytes({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"format": layout})
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)


def save_pdparams(model: nn.Layer, target: str | os.PathLike) -> None:
    """Paddle's native pickle format, for tools that want it; loading it back uses the restricted reader."""
    buffer = io.BytesIO()
    paddle.save(model.state_dict(), buffer)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())

