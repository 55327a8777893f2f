"""What goes into a Funnel: argument checks with the reference's defaults, and sample batches for checks.

`sample_batch` is the one padded sentence-pair batch that parity tests, `paddlefunnel compare` and the export
check feed to the model: <cls> A <sep> B <sep> with token types 2/0/1, rows of different lengths padded with 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle

from ..config import FunnelConfig
from ..errors import InputError
from ..registry import architecture
from .losses import IGNORE_INDEX
from .ops import is_tensor

Tensor = paddle.Tensor


def as_tensor(value: Any, dtype: str | None = None) -> Tensor | None:
    """Accept paddle tensors, numpy arrays or nested lists for every tensor argument."""
    if value is None or is_tensor(value):
        return value
    return paddle.to_tensor(np.asarray(value), dtype=dtype)


def prepare_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds):
    """Validate the input combination and fill the reference's defaults (all-ones mask, zero types)."""
    input_ids = as_tensor(input_ids, "int64")
    inputs_embeds = as_tensor(inputs_embeds)
    if input_ids is not None and inputs_embeds is not None:
        raise InputError("pass either input_ids or inputs_embeds, not both")
    if input_ids is None and inputs_embeds is None:
        raise InputError("pass input_ids or inputs_embeds")
    shape = list(input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1])
    if len(shape) != 2:
        raise InputError(f"expected inputs of shape [batch, seq_len], got {shape}")
    if shape[1] == 0:
        raise InputError("sequence length is 0: nothing to encode")
    attention_mask = as_tensor(attention_mask)
    token_type_ids = as_tensor(token_type_ids, "int64")
    for name, value in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if value is not None and list(value.shape) != shape:
            raise InputError(f"{name} has shape {list(value.shape)}, expected {shape} like the inputs")
    like = input_ids if input_ids is not None else inputs_embeds[:, :, 0]  # shapes may be dynamic (to_static)
    if attention_mask is None:
        attention_mask = paddle.ones_like(like, dtype="float32")
    if token_type_ids is None:
        token_type_ids = paddle.zeros_like(like, dtype="int64")
    return input_ids, attention_mask, token_type_ids, inputs_embeds


def sample_batch(config: FunnelConfig, class_name: str, batch_size: int = 3, seq_len: int = 13,
                 seed: int = 0, num_choices: int = 2, labels: bool = True) -> dict[str, np.ndarray]:
    """A padded sentence-pair batch (<cls> A <sep> B <sep>, types 2/0/1) for `class_name`, [batch, seq_len]
    ([batch, num_choices, seq_len] for multiple choice), with random targets for its loss unless `labels=False`."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(seq_len, max(3, seq_len // 2), batch_size).round().astype(int)
    ids = rng.integers(5, config.vocab_size, (batch_size, seq_len))
    mask = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int64)
    types = np.zeros((batch_size, seq_len), dtype=np.int64)
    for row, length in enumerate(lengths):
        first = max(2, length // 2)
        types[row, first:length] = 1
        ids[row, length:] = 0  # padding id
    types[:, 0] = 2
    batch: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if architecture(class_name).input_rank == 3:
        batch = {k: np.stack([np.roll(v, shift, axis=0) for shift in range(num_choices)], axis=1)
                 for k, v in batch.items()}
    if labels:
        batch.update(_sample_targets(config, class_name, rng, mask, num_choices))
    return batch


def _sample_targets(config: FunnelConfig, class_name: str, rng: np.random.Generator, mask: np.ndarray,
                    num_choices: int) -> dict[str, np.ndarray]:
    """Random targets for the loss of `class_name` (drawn after the inputs, from the same generator)."""
    batch_size, seq_len = mask.shape
    if class_name == "FunnelForMultipleChoice":
        return {"labels": rng.integers(0, num_choices, batch_size)}
    if class_name == "FunnelForPreTraining":
        return {"labels": rng.integers(0, 2, (batch_size, seq_len))}
    if class_name in ("FunnelForMaskedLM", "FunnelForTokenClassification"):
        classes = config.vocab_size if class_name == "FunnelForMaskedLM" else config.num_labels
        token_labels = rng.integers(0, classes, (batch_size, seq_len))
        token_labels[mask == 0] = IGNORE_INDEX
        token_labels[:, 1] = IGNORE_INDEX
        return {"labels": token_labels}
    if class_name == "FunnelForSequenceClassification":
        if config.num_labels == 1 or config.problem_type == "regression":
            shape = (batch_size,) if config.num_labels == 1 else (batch_size, config.num_labels)
            return {"labels": rng.normal(size=shape).astype(np.float32)}
        if config.problem_type == "multi_label_classification":
            return {"labels": rng.integers(0, 2, (batch_size, config.num_labels)).astype(np.float32)}
        return {"labels": rng.integers(0, config.num_labels, batch_size)}
    if class_name == "FunnelForQuestionAnswering":
        start = rng.integers(0, seq_len, batch_size)
        start[-1] = seq_len + 4  # out of range: ignored by the loss
        return {"start_positions": start, "end_positions": np.minimum(start + 2, seq_len + 4)}
    return {}
