"""Relative positional encodings (paper, appendix A.2).

Positions are measured in units of the original sequence. The tokens a block holds sit on an evenly spaced
grid: `2**block` apart after `block` poolings, and with `separate_cls` the <cls> slot sits one stride before
the first real token (at `1 - 2**block`). The "relative_shift" form builds sinusoids of every needed
distance once per forward and lines them up with a shift (from 256 keys on, in chunks of queries that each score
only the distances they can see: `relative_position_scores`); the "factorized" form splits sin(a - b) /
cos(a - b) into per-position terms.

Lengths may be ints or, under to_static with a dynamic sequence length, tensors: the grid arithmetic below
works for both, and so does the banded term (`traced_banded_relative_scores`: chunk count, padding and window
rows computed by the exported program, so Paddle Inference and ONNX can run the banded form at any length;
off by default in Paddle programs, on in ONNX files; measured: see `TRACED_BAND` and deploy/export.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn as nn

from . import cpu_kernels
from .ops import Dropout, dense_slice, dim, known_length
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
    if cpu_kernels.applies(scores):  # one multi-threaded copy instead of two crops (and their gradients)
        return cpu_kernels.relative_shift(scores, 1, q_len, n_dist, shift, q_len, context_len)
    swapped = scores.reshape([0, 0, n_dist, q_len])  # 0: keep that dimension (batch may be dynamic)
    shifted = dense_slice(swapped, 2, shift).reshape([0, 0, q_len, n_dist - shift])
    return dense_slice(shifted, 3, 0, context_len)


# Banded form (see `relative_position_scores`): query rows per chunk, the shortest key length it is used from, and
# the key length from which chunks are twice as tall.
BAND_CHUNK = 64
BAND_MIN_KEYS = 256
BAND_TALL_FROM = 1024
# Programs traced for a dynamic sequence length (`export`) band too when this is on (`traced_banded_relative_scores`).
# `export` traces its ONNX file with it on (`traced_band`; measured there: deploy/export.py ONNX_BAND).
# Off for the Paddle program: measured on the exported small-base FunnelBaseModel, batch 8, one thread, old (full
# form) and new (band) alternating in one process (benchmarks/bench_positions.py --export), the band gained little and
# lost at the common serving length. Paddle Inference fp32: 0.91x / 0.92x at seq 128 (whole program; the term alone
# was even, the pooling layers' term 7-16% slower), 1.02x / 1.07x at 512; onnxruntime fp32 1.01x (128) and 1.04x
# (512); int8 ONNX 1.12x (128, within noise: the term is one chunk there) and 1.03x (512). A graph-level switch to the
# full form below BAND_MIN_KEYS keys did not recover seq 128: as one chunk in the same ops (`traced_band_chunk`, the
# numbers above) or as a `cond` (If) around both forms (0.84x, one run). The dynamic graph gains more (1.18x at 8 x
# 512, RESULTS.md). Exact either way (tests/test_export_banded.py); the machine was shared (load 3-4 on 2 cores), so
# differences of a few percent are at the edge of the noise.
TRACED_BAND = False


@contextlib.contextmanager
def traced_band(enabled: bool) -> Iterator[None]:
    """Within: programs traced for a dynamic length use the band (`enabled`) or the full form."""
    global TRACED_BAND
    saved, TRACED_BAND = TRACED_BAND, enabled
    try:
        yield
    finally:
        TRACED_BAND = saved


def band_chunk(q_len, context_len) -> int | None:
    """Query rows per chunk of the banded position term, or None to use the full-then-shift form.

    Measured (benchmarks/bench_positions.py, RESULTS.md "Banded relative-position term", small-base shapes): the
    banded form pays from 256 keys on; below, the window gather and the smaller matrix products cost about what
    they save. Chunk height, from a sweep of 32 to 256 rows (term alone, speed-up over the full form): 32 rows
    gained nothing; 64 rows was best or tied up to 512 keys (8 x 512 fwd 1.43x vs 1.39x for 128); from 1024 keys
    on, 128 rows (fewer, larger windows to gather and scatter back) beat 64 in backward (1 x 2048 fwd+bwd 2.13x
    vs 0.69x, 8 x 1024 pooling layer 3.10x vs 1.90x). The computed waste is
    shift * chunk / Lk (12.5% at 512 keys) instead of shift * Lq / Lk (100% in block 0).
    Lengths unknown while tracing (to_static with a dynamic sequence length, as `export` traces): the full form,
    or with `TRACED_BAND` on the program makes this choice itself (`traced_band_chunk`).
    """
    q_len, context_len = known_length(q_len), known_length(context_len)
    if q_len is None or context_len is None or context_len < BAND_MIN_KEYS or q_len < BAND_CHUNK:
        return None
    return BAND_CHUNK if context_len < BAND_TALL_FROM else 2 * BAND_CHUNK


def full_relative_scores(q_heads: Tensor, r_heads: Tensor, context_len, shift: int) -> Tensor:
    """[B, H, Lq, D] queries x [1, H, T, D] projected sinusoids (T = shift * Lq + Lk, see `relative_distances`)
    -> [B, H, Lq, Lk]: score every query against all T distances, then `relative_shift`."""
    return relative_shift(paddle.matmul(q_heads, r_heads, transpose_y=True), context_len, shift)


def band_rows(q_len: int, n_dist: int, context_len: int, shift: int, chunk: int) -> np.ndarray:
    """[n_chunks * W] int32 rows of the distance table that chunk k of `chunk` queries reads (W = shift * chunk +
    context_len per chunk, in order).

    Query i scores key j against distance row shift * (Lq - i) + j (what `relative_shift` reads), so the
    queries k*c .. k*c + c - 1 need the rows from shift * (Lq - (k + 1) * c) on; laid out like that, the chunk's
    own [c, W] scores shift exactly as the full [Lq, T] ones do. Rows before 0 (only read by the zero padding
    queries of a last, partial chunk, or by the `shift` leading entries the shift drops) are clamped to 0.
    """
    n_chunks = -(-q_len // chunk)
    width = shift * chunk + context_len
    starts = shift * (q_len - (np.arange(n_chunks) + 1) * chunk)
    rows = starts[:, None] + np.arange(width)[None, :]
    return np.clip(rows, 0, n_dist - 1).reshape([-1]).astype("int32")


def banded_unshifted_scores(q_heads: Tensor, r_heads: Tensor, context_len: int, shift: int,
                            chunk: int) -> tuple[Tensor, int, int, int]:
    """The banded form's scores before its shift, [B, H, n_chunks, chunk, width] (width = shift * chunk + Lk), and
    (n_chunks, chunk, width): chunk k of `chunk` queries against its window of the distance table."""
    q_len, d_head = q_heads.shape[2], q_heads.shape[3]  # batch may be dynamic (to_static): reshapes keep it
    n_dist = r_heads.shape[2]
    n_chunks = -(-q_len // chunk)
    width = shift * chunk + context_len
    padding = n_chunks * chunk - q_len
    if padding:
        zeros = paddle.zeros_like(dense_slice(q_heads, 2, 0, 1)).expand([-1, -1, padding, -1])
        q_heads = paddle.concat([q_heads, zeros], axis=2)
    index = paddle.to_tensor(band_rows(q_len, n_dist, context_len, shift, chunk))
    windows = paddle.index_select(r_heads, index, axis=2).reshape([0, 0, n_chunks, width, d_head])
    scores = paddle.matmul(q_heads.reshape([0, 0, n_chunks, chunk, d_head]), windows, transpose_y=True)
    return scores, n_chunks, chunk, width


def unshifted_position_scores(q_heads: Tensor, r_heads: Tensor, context_len: int,
                              shift: int) -> tuple[Tensor, int, int, int]:
    """`relative_position_scores` before its shift (which `cpu_kernels.attention_softmax` reads in place): the
    scores and their layout (n_chunks, chunk, width), banded where `band_chunk` says, else one chunk of all Lq
    queries against all T distances. Lengths known (dynamic graph)."""
    q_len = q_heads.shape[2]
    chunk = band_chunk(q_len, context_len)
    if chunk is None:
        return paddle.matmul(q_heads, r_heads, transpose_y=True), 1, q_len, r_heads.shape[2]
    return banded_unshifted_scores(q_heads, r_heads, context_len, shift, chunk)


def banded_relative_scores(q_heads: Tensor, r_heads: Tensor, context_len: int, shift: int, chunk: int) -> Tensor:
    """Same values as `full_relative_scores` (to fp32 rounding), computing only the band of distances each
    chunk of `chunk` queries can see: [c, shift * c + Lk] scores per chunk instead of [c, shift * Lq + Lk].

    All chunks go through one batched matmul (chunk as an extra batch axis: Paddle's per-op overhead would eat
    the gain of a Python loop), against the chunks' windows of the distance table gathered into one dense
    tensor (the windows overlap; a strided view of them would be copied slowly, see ops.py). A last, partial
    chunk is padded with zero queries whose rows are dropped at the end.
    """
    q_len = q_heads.shape[2]
    scores, n_chunks, chunk, width = banded_unshifted_scores(q_heads, r_heads, context_len, shift, chunk)
    padding = n_chunks * chunk - q_len
    if cpu_kernels.applies(scores):  # the shift below, and dropping the padding rows, as one copy
        return cpu_kernels.relative_shift(scores, n_chunks, chunk, width, shift, q_len, context_len)
    # The shift of `relative_shift`, within each chunk: [c, W] read as [W, c], `shift` rows dropped, read back.
    swapped = scores.reshape([0, 0, 0, width, chunk])
    shifted = dense_slice(swapped, 3, shift).reshape([0, 0, 0, chunk, width - shift])
    band = dense_slice(shifted, 4, 0, context_len).reshape([0, 0, n_chunks * chunk, context_len])
    return dense_slice(band, 2, 0, q_len) if padding else band


def _int32(value: int) -> Tensor:
    """A [1] int32 constant. Integer arithmetic on lengths in traced code multiplies or adds such tensors instead of
    Python ints: Paddle 3.3.1's Inference predictor drops a `scale` op (what `x * 2` or `x - 1` traces to) that
    follows a broadcasting integer add or subtract (measured: (L - arange(1, L + 1) * 3) * 2 came out unscaled,
    even with IR optimisation off), while jit.load runs the same program correctly."""
    return paddle.full([1], value, dtype="int32")


def _as_length(length) -> Tensor:
    """A length as a [1] int32 tensor (what `dim` returns for a dynamic dimension)."""
    return _int32(length) if isinstance(length, int) else length


def traced_band_chunk(q_len: Tensor, context_len: Tensor) -> Tensor:
    """[1] int32 query rows per chunk when the lengths are tensors (an exported program), `band_chunk`'s choice
    made by the program: from `BAND_MIN_KEYS` keys on `BAND_CHUNK` rows (twice that from `BAND_TALL_FROM` keys
    on), never more than Lq; below, one chunk of all Lq rows, which is the full form's computation."""
    tall = (context_len >= _int32(BAND_TALL_FROM)).astype("int32")
    height = paddle.minimum(q_len, _int32(BAND_CHUNK) + _int32(BAND_CHUNK) * tall)
    return paddle.where(context_len >= _int32(BAND_MIN_KEYS), height, q_len)


def traced_band_rows(q_len: Tensor, context_len: Tensor, shift: int, chunk: Tensor) -> Tensor:
    """`band_rows` computed by the program from [1] int32 lengths and chunk height. No upper clip is needed: the
    first chunk's window ends at the table's last row, shift * Lq + Lk - 1, and the later ones before it."""
    one, step = _int32(1), chunk * _int32(shift)
    n_chunks = paddle.floor_divide(q_len + chunk - one, chunk)
    width = context_len + step
    starts = q_len * _int32(shift) - paddle.arange(1, n_chunks + one, dtype="int32") * step
    rows = starts.unsqueeze(1) + paddle.arange(0, width, dtype="int32").unsqueeze(0)
    return paddle.maximum(rows, paddle.zeros_like(rows)).reshape([-1])


def traced_banded_relative_scores(q_heads: Tensor, r_heads: Tensor, context_len, shift: int,
                                  chunk: Tensor | None = None) -> Tensor:
    """`banded_relative_scores` with lengths (and chunk height) that are tensors, as in a program traced for a
    dynamic sequence length: the chunk count, padding and window rows are computed by the program."""
    q_len = _as_length(dim(q_heads, 2))
    context_len = _as_length(context_len)
    chunk = traced_band_chunk(q_len, context_len) if chunk is None else chunk
    n_head, d_head = q_heads.shape[1], q_heads.shape[3]
    width = context_len + chunk * _int32(shift)
    n_rows = paddle.floor_divide(q_len + chunk - _int32(1), chunk) * chunk
    # Zero queries fill the last chunk: append as many as the tallest chunk has rows, keep n_rows rows in all.
    zeros = paddle.zeros_like(dense_slice(q_heads, 2, 0, 1)).expand([-1, -1, 2 * BAND_CHUNK, -1])
    padded = dense_slice(paddle.concat([q_heads, zeros], axis=2), 2, 0, n_rows)
    index = traced_band_rows(q_len, context_len, shift, chunk)
    # Heads and chunks share one batch axis (rank 4: 1.4x faster than rank 5 in Paddle Inference at 8 x 512).
    windows = paddle.index_select(r_heads, index, axis=2).reshape([0, -1, width, d_head])
    scores = paddle.matmul(padded.reshape([0, -1, chunk, d_head]), windows, transpose_y=True)
    swapped = scores.reshape([0, 0, width, chunk])
    shifted = dense_slice(swapped, 2, shift).reshape([0, n_head, n_rows, width - _int32(shift)])
    # One copy keeps the real queries' rows and the Lk keys (static graphs only: `paddle.slice` is dense there).
    return paddle.slice(shifted, axes=[2, 3], starts=[0, 0], ends=[q_len, context_len])


def relative_position_scores(q_heads: Tensor, r_heads: Tensor, context_len, shift: int) -> Tensor:
    """The relative-shift position term [B, H, Lq, Lk]: banded where that is faster (`band_chunk`), else full.

    The full form scores each query against all shift * Lq + Lk distances and keeps Lk of them: at Lq = Lk
    half of that matrix product and of its [B, H, Lq, 2 Lk] result (the model's largest activation) is waste.
    Lengths unknown while tracing: the full form, or the band computed by the program with `TRACED_BAND` on.
    """
    q_len = dim(q_heads, 2)
    if TRACED_BAND and (known_length(q_len) is None or known_length(context_len) is None):
        return traced_banded_relative_scores(q_heads, r_heads, context_len, shift)
    chunk = band_chunk(q_len, context_len)
    if chunk is None:
        return full_relative_scores(q_heads, r_heads, context_len, shift)
    return banded_relative_scores(q_heads, r_heads, context_len, shift, chunk)


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
