"""Batch prediction over features held in memory: what evaluation during training and the task pipelines'
evaluate / predict commands share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist
import paddle.nn as nn

from ..registry import LABEL_KEYS
from .batches import ArrayDataset


def predict_arrays(model: nn.Layer, data: ArrayDataset, keys: Sequence[str], batch_size: int, rank: int = 0,
                   world_size: int = 1) -> dict[str, np.ndarray]:
    """The model's outputs `keys` (e.g. "logits") for every feature of `data`, in order, as float32 arrays.

    Each of `world_size` processes predicts every `world_size`-th feature from `rank` on, and the shares are
    gathered back into the original order on every process. Label arrays in `data` are not fed. The model is
    put in eval mode for the call and left in the mode it was in.
    """
    was_training = model.training
    model.eval()
    indices = np.arange(len(data))[rank::world_size]
    feed = {k: v for k, v in data.arrays.items() if k not in LABEL_KEYS}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    with paddle.no_grad():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            result = model(**{k: paddle.to_tensor(v[chunk]) for k, v in feed.items()})
            for key in keys:
                outputs[key].append(getattr(result, key).astype("float32").numpy())
    local = {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in outputs.items()}
    if was_training:
        model.train()
    return local if world_size == 1 else _gather(indices, local, keys)


def _gather(indices: np.ndarray, local: dict[str, np.ndarray], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Every process's (indices, outputs) share, merged and put back in feature order."""
    gathered: list[Any] = []
    dist.all_gather_object(gathered, (indices, local))
    order = np.concatenate([g[0] for g in gathered])
    merged = {k: np.concatenate([g[1][k] for g in gathered if len(g[0])]) for k in keys}
    inverse = np.argsort(order)
    return {k: v[inverse] for k, v in merged.items()}
