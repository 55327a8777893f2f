"""What a training run keeps on disk: the best model, and the last checkpoint to resume from.

A checkpoint is the model (plus its sidecar files), the optimizer's moments, the scheduler and the position in
the data (`STATE_FILE`). Each directory is written beside its target and swapped in only when complete, so an
interrupted save leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn

from ..checkpoint import PADDLE_LAYOUT, load_state_into, read_checkpoint, read_safetensors, write_safetensors
from ..errors import WeightsError
from ..io_utils import atomic_directory, read_json_object

CHECKPOINT_DIR = "checkpoint-last"
BEST_DIR = "best"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"

SaveExtra = Callable[[Path], None]  # writes a model's sidecar files (tokenizer, task settings) into a directory


def save_model(directory: Path, model: nn.Layer, save_extra: SaveExtra | None = None) -> None:
    """The model and its sidecar files, replacing `directory` only when complete."""
    with atomic_directory(directory, "model") as tmp:
        _write_model(tmp, model, save_extra)


def save_checkpoint(directory: Path, model: nn.Layer, optimizer: paddle.optimizer.Optimizer,
                    scheduler: paddle.optimizer.lr.LRScheduler, position: dict[str, Any], args: dict[str, Any],
                    world_size: int, save_extra: SaveExtra | None = None) -> None:
    """Model, optimizer, scheduler and `position` (the trainer's counters), replacing `directory` only when
    complete. `args` and `world_size` are recorded for the reader; resuming does not use them."""
    with atomic_directory(directory, "checkpoint") as tmp:
        _write_model(tmp, model, save_extra)
        write_safetensors(structured_optimizer_state(optimizer, model), tmp / OPTIMIZER_FILE, PADDLE_LAYOUT)
        payload = {"trainer": position, "scheduler": scheduler.state_dict(), "args": args, "world_size": world_size}
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def has_checkpoint(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()


def restore_checkpoint(directory: Path, model: nn.Layer, optimizer: paddle.optimizer.Optimizer,
                       scheduler: paddle.optimizer.lr.LRScheduler) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` into model, optimizer and scheduler; return the position."""
    payload = read_json_object(directory / STATE_FILE, "trainer state file")
    load_state_into(model, read_checkpoint(directory))
    tensors, _ = read_safetensors(directory / OPTIMIZER_FILE)
    restore_optimizer_state(optimizer, model, tensors, payload["scheduler"])
    scheduler.set_state_dict(payload["scheduler"])
    return payload["trainer"]


def _write_model(directory: Path, model: nn.Layer, save_extra: SaveExtra | None) -> None:
    model.save_pretrained(directory)
    if save_extra is not None:
        save_extra(directory)


# ------------------------------------------------------------------------------------- optimizer state
def structured_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: nn.Layer) -> dict[str, np.ndarray]:
    """Optimizer tensors keyed "<structured parameter name>::<accumulator>".

    Paddle keys optimizer state by internal parameter names (e.g. "linear_3.w_0_moment1_0"), which depend on
    how many layers a process created before; structured names ("classifier.linear_out.weight") do not.
    """
    by_internal = {p.name: name for name, p in model.named_parameters()}
    out = {}
    for key, value in optimizer.state_dict().items():
        if not isinstance(value, paddle.Tensor):
            continue
        internal = max((n for n in by_internal if key.startswith(n + "_")), key=len, default=None)
        if internal is None:
            raise KeyError(f"optimizer state {key!r} belongs to no model parameter")
        out[f"{by_internal[internal]}::{key[len(internal) + 1:]}"] = value.numpy()
    return out


def restore_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: nn.Layer, tensors: dict[str, np.ndarray],
                            scheduler_state: dict[str, Any]) -> None:
    """The inverse of `structured_optimizer_state`, for this process's internal parameter names."""
    internal = {name: p.name for name, p in model.named_parameters()}
    state: dict[str, Any] = {}
    for key, value in tensors.items():
        structured, suffix = key.split("::", 1)
        if structured not in internal:
            raise WeightsError(f"checkpoint optimizer state for unknown parameter {structured!r}")
        state[f"{internal[structured]}_{suffix}"] = paddle.to_tensor(value)
    state["LR_Scheduler"] = scheduler_state
    optimizer.set_state_dict(state)
