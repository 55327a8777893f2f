"""Relative positional encodings (paper, appendix A.2).

Positions are measured in units of the original sequence. The tokens a block holds sit on an evenly spaced
grid: `2**block` apart after `block` poolings, and with `separate_cls` the <cls> slot sits one stride before
the first real token (at `1 - 2**block`). The "relative_shift" form builds sinusoids of every needed
distance once per forward and lines them up with a shift; the "factorized" form splits sin(a - b) /
cos(a - b) into per-position terms.

Lengths may be ints or, under to_static with a dynamic sequence length, tensors: the grid arithmetic below
works for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn as nn

from .ops import Dropout, dense_slice, dim
from .pooling import can_pool

Tensor = paddle.Tensor


def _inverse_frequencies(d_model: int) -> np.ndarray:
    """1 / 10000^(i / (d_model/2)), computed once with Paddle's own kernels (as the reference computes it).

    Held as a constant: an exported graph then needs no `pow` (which paddle2onnx cannot convert).
    """
    half = d_model // 2
    with paddle.no_grad():
        freq = paddle.arange(0, half, dtype="int64").astype("float32")
        return (1.0 / (10000 ** (freq / half))).numpy()


def sin_and_cos(angles: Tensor) -> tuple[Tensor, Tensor]:
    """sin(angles), cos(angles), each computed from its own copy of `angles`.

    Paddle 3.3's Inference `inplace_pass` turns `sin(a)` into an in-place op even when `cos(a)` still
    reads `a`, so an exported graph would compute cos(sin(a)); separate inputs keep it correct.
    """
    half = angles.shape[-1]
    both = paddle.concat([angles, angles], axis=-1)
    return paddle.sin(dense_slice(both, 1, 0, half)), paddle.cos(dense_slice(both, 1, half))


@dataclass(frozen=True)
class PositionGrid:
    """Positions first, first + stride, ..., of the `count` tokens a block holds."""

    first: int
    stride: int
    count: object  # int, or a tensor under to_static

    @property
    def last(self):
        return self.first + (self.count - 1) * self.stride


def pooled_grid(grid: PositionGrid, separate_cls: bool, truncate_seq: bool) -> PositionGrid:
    """The positions that survive one pooling (the first of every window), as `pool_sequence` keeps them."""
    stride = 2 * grid.stride
    if not separate_cls:
        return PositionGrid(grid.first, stride, (grid.count + 1) // 2)
    body = grid.count - 1 - (1 if truncate_seq else 0)  # real tokens pooled (<cls> kept apart, last dropped)
    return PositionGrid(1 - stride, stride, 1 + (body + 1) // 2)


def relative_distances(query: PositionGrid, key: PositionGrid, shift: int):
    """(start, count): the descending distances start, start - s, ... (s = key stride) whose sinusoids the
    shift trick needs to score `query` against `key`.

    The list starts `shift * query.count` strides beyond the first query/key offset (rows the shift
    discards) and ends at the most negative distance, first query minus last key.
    """
    start = (query.first - key.first) + shift * query.count * key.stride
    return start, shift * query.count + key.count


def relative_shift(scores: Tensor, context_len, shift: int) -> Tensor:
    """[B, H, Lq, T] scores against every distance -> [B, H, Lq, context_len] scores against keys.

    Re-reading the buffer with rows and distances swapped and `shift` rows dropped moves row i left by
    `shift * i` entries, which turns "distance index" into "key index" without an explicit gather.
    (Dense slices: a strided view of this buffer would be copied very slowly by the dynamic graph.)
    """
    q_len, n_dist = dim(scores, 2), dim(scores, 3)
    swapped = scores.reshape([0, 0, n_dist, q_len])  # 0: keep that dimension (batch may be dynamic)
    shifted = dense_slice(swapped, 2, shift).reshape([0, 0, q_len, n_dist - shift])
    return dense_slice(shifted, 3, 0, context_len)


@dataclass
class FactorizedPositions:
    """(phi, pi) depend on query positions and (psi, omega) on key positions, so each side pools alone."""

    phi: Tensor
    pi: Tensor
    psi: Tensor
    omega: Tensor


class PositionEncoder(nn.Layer):
    """Builds the sinusoid position inputs of every block for one forward pass."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.sin_dropout = Dropout(config.hidden_dropout)
        self.cos_dropout = Dropout(config.hidden_dropout)
        self._inverse_frequencies = _inverse_frequencies(config.d_model)

    def inverse_frequencies(self, dtype) -> Tensor:
        return paddle.to_tensor(self._inverse_frequencies).astype(dtype)

    def forward(self, seq_len, dtype: str):
        if self.config.attention_type == "factorized":
            return self.factorized(seq_len, dtype)
        return self.relative_shift_tables(seq_len, dtype)

    def factorized(self, seq_len, dtype: str) -> FactorizedPositions:
        positions = paddle.arange(0, seq_len, dtype="int64").astype(dtype)
        angles = positions[:, None] * self.inverse_frequencies(dtype)[None]
        sin, cos = sin_and_cos(angles)
        sin_dropped, cos_dropped = self.sin_dropout(sin), self.cos_dropout(cos)
        return FactorizedPositions(
            phi=paddle.concat([sin_dropped, sin_dropped], axis=-1),
            pi=paddle.concat([cos_dropped, cos_dropped], axis=-1),
            psi=paddle.concat([cos, sin], axis=-1),
            omega=paddle.concat([-sin, cos], axis=-1),
        )

    def relative_shift_tables(self, seq_len, dtype: str) -> list[list[Tensor | None]]:
        """Per block: [sinusoids for attention within the block, sinusoids for the pooling layer (or None)].

        Distances of every block lie in [-2L, 2L); one table of that range is built (and dropped out) once
        and each block picks its rows from it.
        """
        config = self.config
        offset = 2 * seq_len
        distances = paddle.arange(-offset, offset, dtype="int64").astype(dtype)
        angles = distances[:, None] * self.inverse_frequencies(dtype)[None]
        sin, cos = sin_and_cos(angles)
        table = paddle.concat([self.sin_dropout(sin), self.cos_dropout(cos)], axis=-1)

        def rows(query: PositionGrid, key: PositionGrid, shift: int) -> Tensor:
            start, count = relative_distances(query, key, shift)
            index = paddle.arange(0, count, dtype="int32") * (-key.stride) + (start + offset)
            return paddle.index_select(table, index, axis=0)

        grid = PositionGrid(first=0, stride=1, count=seq_len)
        tables = []
        for block_index in range(config.num_blocks):
            pooling_table = None
            if block_index > 0 and can_pool(grid.count, config.separate_cls):
                pooled = pooled_grid(grid, config.separate_cls, config.truncate_seq)
                # The pooling layer scores pooled queries against the previous block's keys.
                pooling_table = rows(pooled, grid, shift=2)
                grid = pooled
            tables.append([rows(grid, grid, shift=1), pooling_table])
        return tables
