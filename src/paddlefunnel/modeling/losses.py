"""The task losses, computed exactly as the reference computes them (same reductions and ignored labels)."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F

Tensor = paddle.Tensor
IGNORE_INDEX = -100  # label value excluded from token-level losses, as in PyTorch and transformers

def sequence_classification_loss(logits: Tensor, labels: Tensor, num_labels: int, problem_type: str | None) -> Tensor:
    """Regression for one label, cross-entropy for integer labels, BCE for multi-hot float labels."""
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype in (paddle.int64, paddle.int32):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        labels = labels.astype(logits.dtype)
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze())
        return F.mse_loss(logits, labels)
    if problem_type == "single_label_classification":
        return F.cross_entropy(logits.reshape([-1, num_labels]), labels.reshape([-1]).astype("int64"))
    return F.binary_cross_entropy_with_logits(logits, labels.astype(logits.dtype))


def masked_cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int) -> Tensor:
    """Mean cross-entropy over the positions whose label is not `ignore_index` (NaN if there are none).

    Paddle's own `cross_entropy(reduction="mean")` divides by all positions when ignored labels are
    negative (e.g. -100); the reference divides by the kept ones, so the mean is taken here.
    """
    labels = labels.reshape([-1]).astype("int64")
    keep = labels != ignore_index
    safe_labels = paddle.where(keep, labels, paddle.zeros_like(labels))
    losses = F.cross_entropy(logits.reshape([labels.shape[0], -1]), safe_labels, reduction="none").reshape([-1])
    keep = keep.astype(losses.dtype)
    return (losses * keep).sum() / keep.sum()


def token_classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    return masked_cross_entropy(logits, labels, IGNORE_INDEX)


def span_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor, end_positions: Tensor) -> Tensor:
    """Mean of start and end cross-entropies; positions outside the sequence are ignored, not errors."""
    seq_len = start_logits.shape[1]
    # Out-of-range targets (e.g. an answer cut off by truncation) are clamped to seq_len, then ignored.
    start = start_positions.reshape([-1]).astype("int64").clip(0, seq_len)
    end = end_positions.reshape([-1]).astype("int64").clip(0, seq_len)
    return (masked_cross_entropy(start_logits, start, seq_len) + masked_cross_entropy(end_logits, end, seq_len)) / 2


def multiple_choice_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy over the choices: logits [batch, num_choices], labels [batch] (index of the right choice)."""
    return F.cross_entropy(logits, labels.reshape([-1]).astype("int64"))


def replaced_token_loss(logits: Tensor, labels: Tensor, attention_mask: Tensor | None) -> Tensor:
    """ELECTRA discriminator loss: BCE over real (unmasked) tokens, label 1 = replaced."""
    labels = labels.astype(logits.dtype)
    if attention_mask is None:
        return F.binary_cross_entropy_with_logits(logits, labels)
    active = attention_mask.reshape(logits.shape) == 1
    return F.binary_cross_entropy_with_logits(paddle.masked_select(logits, active), paddle.masked_select(labels, active))
