"""Sequence compression (the "funnel") and its inverse, the decoder's upsampling.

With `separate_cls`, the first token (<cls>) never merges with its neighbours: it is duplicated in front
of the sequence so that the first pooling window holds two copies of it. With `truncate_seq`, the last
token is dropped before pooling so that the pooled length stays even-friendly for the next block.

Lengths may be Python ints (dynamic graph) or tensors (to_static with a dynamic sequence length); where a
decision depends on a length that is unknown while tracing, the long-input case is assumed, which is why
an exported graph needs inputs of at least `min_length_for_full_pooling` tokens.
"""

from __future__ import annotations

import numpy as np
import paddle

from .ops import in_dynamic_graph, known_length

Tensor = paddle.Tensor
_TO_END = 2**31 - 1  # slice end meaning "to the end of the axis"


def can_pool(length, separate_cls: bool) -> bool:
    """Pooling stops once only <cls> and one token (or a single token) are left (assumed not, if unknown)."""
    length = known_length(length)
    return True if length is None else length > (2 if separate_cls else 1)


def pooled_length(length, separate_cls: bool, truncate_seq: bool):
    if separate_cls:
        length = length if truncate_seq else length + 1
    return (length + 1) // 2


def num_poolings(seq_len, num_blocks: int, separate_cls: bool, truncate_seq: bool) -> int:
    """How many of the blocks after the first really pool a sequence of `seq_len` tokens."""
    count = 0
    for _ in range(1, num_blocks):
        if not can_pool(seq_len, separate_cls):
            break
        seq_len = pooled_length(seq_len, separate_cls, truncate_seq)
        count += 1
    return count


def min_length_for_full_pooling(num_blocks: int, separate_cls: bool, truncate_seq: bool) -> int:
    """Shortest input for which every block after the first pools (what an exported graph assumes)."""
    length = 1
    while num_poolings(length, num_blocks, separate_cls, truncate_seq) < num_blocks - 1:
        length += 1
    return length


def _keep_cls_apart(tensor: Tensor, axis: int, truncate_seq: bool) -> Tensor:
    """[c, x1, ..., xn] -> [c, c, x1, ..., x(n-1)] (or ..., xn without truncation) along `axis`."""
    cls = paddle.slice(tensor, axes=[axis], starts=[0], ends=[1])
    body = paddle.slice(tensor, axes=[axis], starts=[0], ends=[-1]) if truncate_seq else tensor
    # paddle.concat, not ops.concat: the C kernel's concat here gave wrong gradients under non-reentrant
    # recomputation (tests/test_engine.py), for a reason not found; pooling's concatenations are not hot.
    return paddle.concat([cls, body], axis=axis)


def _every_other(tensor: Tensor, start: int) -> Tensor:
    return paddle.strided_slice(tensor, axes=[1], starts=[start], ends=[_TO_END], strides=[2])


def window_sources(length: int, separate_cls: bool, truncate_seq: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each pooling window over `length` positions, the positions of its two members (int64 arrays): with
    separate_cls the sequence is first read as [c, c, x1, ...] (`_keep_cls_apart`), and a lone last member is
    paired with itself."""
    order = np.arange(length)
    if separate_cls:
        order = np.concatenate([[0], order[:-1] if truncate_seq else order])
    first = order[0::2]
    second = order[np.minimum(np.arange(1, 2 * len(first), 2), len(order) - 1)]
    return first.astype(np.int64), second.astype(np.int64)


def pool_sequence(tensor: Tensor, mode: str, separate_cls: bool, truncate_seq: bool) -> Tensor:
    """Halve the sequence axis (axis 1 of [B, L] or [B, L, D]): windows of 2, stride 2, last one partial.

    `mode` is "mean" or "max" for hidden states, "min" for attention masks (a pooled token is masked as
    soon as one of its two sources is padding). In the dynamic graph both members of every window are gathered
    with one `index_select` each: the same values as the slices and concatenations the static graph needs for an
    unknown length, and 25x faster forward + backward on the CPU ([8, 128, 768]: 1.2 ms against 31 ms, whose
    slice and strided-slice gradients run on one thread, element by element).
    """
    if mode not in ("mean", "max", "min"):
        raise ValueError(f"pooling mode must be 'mean', 'max' or 'min', got {mode!r}")
    length = known_length(tensor.shape[1])
    if in_dynamic_graph() and length is not None:
        first_index, second_index = window_sources(length, separate_cls, truncate_seq)
        first = paddle.index_select(tensor, paddle.to_tensor(first_index), axis=1)
        second = paddle.index_select(tensor, paddle.to_tensor(second_index), axis=1)
    else:
        if separate_cls:
            tensor = _keep_cls_apart(tensor, axis=1, truncate_seq=truncate_seq)
        first = _every_other(tensor, 0)
        # Window partners; a lone last token (odd length) is paired with itself, which gives exactly itself for
        # mean, max and min. Written without a branch on the length, which may be unknown (to_static).
        second = _every_other(paddle.concat([tensor, tensor[:, -1:]], axis=1), 1)
    if mode == "mean":
        return (first + second) * 0.5
    if mode == "max":
        return paddle.maximum(first, second)
    return paddle.minimum(first, second)


def stride_pool(tensor: Tensor | None, axes: int | tuple[int, ...], separate_cls: bool, truncate_seq: bool):
    """Keep every other position along `axes` (for per-position metadata: segment factors, position tables).

    Picks the positions whose hidden states `pool_sequence` puts first in each window, so metadata and
    hidden states stay aligned.
    """
    if tensor is None:
        return None
    for axis in (axes,) if isinstance(axes, int) else axes:
        axis %= tensor.ndim
        if separate_cls:
            tensor = _keep_cls_apart(tensor, axis, truncate_seq=False)
        end = -1 if separate_cls and truncate_seq else _TO_END
        tensor = paddle.strided_slice(tensor, axes=[axis], starts=[0], ends=[end], strides=[2])
    return tensor


def repeat_each(tensor: Tensor, times: int) -> Tensor:
    """[B, N, D] -> [B, N*times, D], every position repeated `times` times in place (a repeat_interleave
    written with stack + reshape, which also converts to ONNX correctly)."""
    return paddle.stack([tensor] * times, axis=2).reshape([0, -1, tensor.shape[-1]])


def upsample(hidden: Tensor, stride: int, target_len, separate_cls: bool, truncate_seq: bool) -> Tensor:
    """Undo `stride`-fold pooling by repeating each compressed token, back to `target_len` positions."""
    if stride == 1:
        return hidden
    if not separate_cls:
        return repeat_each(hidden, stride)[:, :target_len]
    cls, body = hidden[:, :1], hidden[:, 1:]
    repeated = repeat_each(body, stride)
    if truncate_seq:
        # Tokens dropped by truncation before pooling have no compressed source: they get zeros here
        # (the decoder's residual from the first block still carries them).
        repeated = paddle.concat([repeated, paddle.zeros_like(repeated[:, : stride - 1])], axis=1)
    return paddle.concat([cls, repeated[:, : target_len - 1]], axis=1)
