"""HuggingFace <-> Paddle: parameter names and tensor layouts.

Parameter names are the reference's, so the only layout difference is `nn.Linear`: PyTorch stores
[out, in], Paddle [in, out]. Which tensors are Linear weights is read off the model, never guessed.
"""

from __future__ import annotations

import numpy as np
import paddle.nn as nn

from .formats import HF_LAYOUT, Checkpoint

BODY_PREFIX = "funnel."
# Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


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
