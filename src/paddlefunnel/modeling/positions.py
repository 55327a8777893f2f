"""Relative positional encodings (paper, appendix A.2).

Positions are measured in units of the original sequence. After each pooling the kept tokens are spread
`2**block` apart, and with `separate_cls` the <cls> slot sits at `1 - 2**block`, one stride before the
first real token. The "relative_shift" form builds sinusoids of every needed distance once per forward and
lines them up with a shift; the "factorized" form splits sin(a - b) / cos(a - b) into per-position terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
import paddle.nn as nn

from .pooling import can_pool

Tensor = paddle.Tensor


def _inverse_frequencies(d_model: int, dtype: str) -> Tensor:
    half = d_model // 2
    freq = paddle.arange(0, half, dtype="int64").astype(dtype)
    return 1.0 / (10000 ** (freq / half))


def pooled_positions(positions: list[int], new_stride: int, separate_cls: bool, truncate_seq: bool) -> list[int]:
    """Which original positions survive a pooling that leaves tokens `new_stride` apart."""
    if not separate_cls:
        return positions[::2]
    cls_position = 1 - new_stride
    body = positions[1:-1] if truncate_seq else positions[1:]
    return [cls_position] + body[::2]


def relative_distances(query_pos: list[int], key_pos: list[int], stride: int, shift: int) -> list[int]:
    """Descending distances whose sinusoids the shift trick needs to score `query_pos` against `key_pos`.

    The list starts `shift * len(query_pos)` strides beyond the first query/key offset (rows the shift
    discards) and ends at the most negative distance, first query minus last key.
    """
    start = (query_pos[0] - key_pos[0]) + shift * len(query_pos) * stride
    stop = query_pos[0] - key_pos[-1]
    return list(range(start, stop - 1, -stride))


def relative_shift(scores: Tensor, context_len: int, shift: int) -> Tensor:
    """[B, H, Lq, T] scores against every distance -> [B, H, Lq, context_len] scores against keys.

    Re-reading the buffer with rows and distances swapped and `shift` rows dropped moves row i left by
    `shift * i` entries, which turns "distance index" into "key index" without an explicit gather.
    """
    batch, heads, q_len, n_dist = scores.shape
    shifted = scores.reshape([batch, heads, n_dist, q_len])[:, :, shift:, :]
    shifted = shifted.reshape([batch, heads, q_len, n_dist - shift])
    return shifted[:, :, :, :context_len].contiguous()


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
        self.sin_dropout = nn.Dropout(config.hidden_dropout)
        self.cos_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, seq_len: int, dtype: str):
        if self.config.attention_type == "factorized":
            return self.factorized(seq_len, dtype)
        return self.relative_shift_tables(seq_len, dtype)

    def factorized(self, seq_len: int, dtype: str) -> FactorizedPositions:
        angles = paddle.arange(0, seq_len, dtype="int64").astype(dtype)[:, None] * _inverse_frequencies(
            self.config.d_model, dtype
        )[None]
        sin, cos = paddle.sin(angles), paddle.cos(angles)
        sin_dropped, cos_dropped = self.sin_dropout(sin), self.cos_dropout(cos)
        return FactorizedPositions(
            phi=paddle.concat([sin_dropped, sin_dropped], axis=-1),
            pi=paddle.concat([cos_dropped, cos_dropped], axis=-1),
            psi=paddle.concat([cos, sin], axis=-1),
            omega=paddle.concat([-sin, cos], axis=-1),
        )

    def relative_shift_tables(self, seq_len: int, dtype: str) -> list[list[Tensor | None]]:
        """Per block: [sinusoids for attention within the block, sinusoids for the pooling layer (or None)].

        Distances of every block lie in [-2L, 2L); one table of that range is built (and dropped out) once
        and each block picks its rows from it.
        """
        config = self.config
        offset = 2 * seq_len
        distances = paddle.arange(-offset, offset, dtype="int64").astype(dtype)
        angles = distances[:, None] * _inverse_frequencies(config.d_model, dtype)[None]
        table = paddle.concat([self.sin_dropout(paddle.sin(angles)), self.cos_dropout(paddle.cos(angles))], axis=-1)

        def rows(dist: list[int]) -> Tensor:
            return paddle.index_select(table, paddle.to_tensor([d + offset for d in dist], dtype="int64"), axis=0)

        positions = list(range(seq_len))
        stride = 1
        tables = []
        for block_index in range(config.num_blocks):
            pooling_table = None
            if block_index > 0 and can_pool(len(positions), config.separate_cls):
                pooled = pooled_positions(positions, 2 * stride, config.separate_cls, config.truncate_seq)
                # The pooling layer scores pooled queries against the previous block's keys.
                pooling_table = rows(relative_distances(pooled, positions, stride, shift=2))
                positions, stride = pooled, 2 * stride
            within_table = rows(relative_distances(positions, positions, stride, shift=1))
            tables.append([within_table, pooling_table])
        return tables
