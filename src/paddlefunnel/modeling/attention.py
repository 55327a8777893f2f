"""Relative multi-head attention: score = content + relative position + token type (paper, section 2).

How the score is computed (same values as the reference, fewer passes over [B, H, Lq, Lk] memory):
every term except the relative-shift position term is a bilinear form of a per-query vector and a per-key
vector, so their vectors are concatenated and one matmul produces content + token type + mask at once
(`bilinear_scores`); the relative-shift position term is one more matmul and a shift (`positional_scores`),
banded from 256 keys on so that only the distances each query can see are scored (`relative_position_scores`).
Pairs involving <cls> get the content term only (`separate_cls`): the <cls> factors are zero on the query
and key sides, and the position term's <cls> column is cancelled inside the same matmul.

On the C kernels (float32, CPU, dynamic graph) the relative-shift form instead adds its terms in the softmax's own
pass (`fused_probabilities`): the content and position products are plain matmuls, the token type comes from two
[B, Lq, Lk] 0/1 tables per block (`AttentionInputs.pair_terms`) and a per-query (u, v), and the <cls> row and
column skip the position term there; no concatenated factors, no shifted copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import cpu_kernels
from .ops import (Dropout, LayerNorm, Linear, add_and_norm, add_bias, concat, dense_slice, dense_transpose, dim,
                  merge_heads, project_heads, split_heads)
from .pooling import pool_sequence, stride_pool
from .positions import (FactorizedPositions, PositionEncoder, relative_position_scores,
                        unshifted_position_scores)

Tensor = paddle.Tensor

CLS_TOKEN_TYPE = 2  # <cls> gets token type 2 and counts as part of both segments
MASK_PENALTY = 1e6
MASK_PENALTY_FP16 = 1e4  # exp(-1e4) is 0 as well, and 1e4 fits in float16


def same_segment_matrix(token_type_ids: Tensor) -> Tensor:
    """[B, L] ids -> [B, L, L] bool: may the two tokens use the "same segment" bias? (<cls> always may)."""
    same = token_type_ids[:, :, None] == token_type_ids[:, None, :]
    is_cls = token_type_ids == CLS_TOKEN_TYPE
    return same | is_cls[:, :, None] | is_cls[:, None, :]


def segment_factors(token_type_ids: Tensor, num_types: int, dtype) -> tuple[Tensor, Tensor]:
    """Per-token vectors a_i, b_j ([B, L, F]) with a_i . b_j == same_segment_matrix[i, j].

    same(i, j) = cls_i + (1 - cls_i) cls_j + sum_t [type_i = t][type_j = t] over the non-<cls> types t,
    which needs no [L, L] matrix: the token-type term becomes part of a matmul.
    """
    is_cls = (token_type_ids == CLS_TOKEN_TYPE).astype(dtype)
    types = [(token_type_ids == t).astype(dtype) for t in range(max(num_types, 3)) if t != CLS_TOKEN_TYPE]
    query = paddle.stack([is_cls, 1.0 - is_cls, *types], axis=-1)
    key = paddle.stack([paddle.ones_like(is_cls), is_cls, *types], axis=-1)
    return query, key


def non_cls_positions(seq_len, dtype) -> Tensor:
    """[L]: 0 at position 0 (<cls>), 1 elsewhere; multiplying a side's factors by it removes <cls> pairs."""
    return (paddle.arange(0, seq_len, dtype="int64") > 0).astype(dtype)


@dataclass
class AttentionInputs:
    """What every layer of a block needs besides the hidden states; pooled along with them.

    Factors are per token ([B, L, F]); slot 0 is 1 for tokens whose pairs carry the position and
    token-type terms (0 for <cls> with separate_cls), the others hold `segment_factors` times that slot.
    """

    positions: Any  # list of per-block tables (relative_shift) or FactorizedPositions
    query_factors: Tensor  # [B, Lq, F]
    key_factors: Tensor  # [B, Lk, F]
    attention_mask: Tensor | None  # [B, Lk] float, 1 = attend
    _pair_terms: tuple | None = field(default=None, repr=False, compare=False)

    def pair_terms(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """(pair_diff, pair_same, key_bias) of `cpu_kernels.attention_softmax`: [B, Lq, Lk] 1 where query and key
        carry the different- / same-segment term, and the mask's [B, Lk] penalty (None without a mask); computed
        once for all the layers that share these inputs."""
        if self._pair_terms is None:
            with paddle.no_grad():
                query_types, key_types = dense_slice(self.query_factors, 2, 1), dense_slice(self.key_factors, 2, 1)
                same = paddle.matmul(query_types, key_types, transpose_y=True)
                both = paddle.matmul(dense_slice(self.query_factors, 2, 0, 1), dense_slice(self.key_factors, 2, 0, 1),
                                     transpose_y=True)
                key_bias = None
                if self.attention_mask is not None:
                    key_bias = -MASK_PENALTY * (1.0 - self.attention_mask.astype(same.dtype))
                self._pair_terms = (both - same, same, key_bias)
        return self._pair_terms


class AttentionStructure(nn.Layer):
    """Prepares `AttentionInputs` and pools them exactly where the hidden states are pooled."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.position_encoder = PositionEncoder(config)

    def init_inputs(self, inputs_embeds: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None):
        seq_len = dim(inputs_embeds, 1)
        dtype = inputs_embeds.dtype
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(inputs_embeds[:, :, 0], dtype="int64")
        query, key = segment_factors(token_type_ids, getattr(self.config, "type_vocab_size", None) or 3, dtype)
        active = paddle.ones_like(query[:, :, :1])
        positions = self.position_encoder(seq_len, dtype)
        if self.config.separate_cls:
            active = active * non_cls_positions(seq_len, dtype)[None, :, None]
            if isinstance(positions, FactorizedPositions):
                rows = non_cls_positions(seq_len, dtype)[:, None]
                positions = FactorizedPositions(*(t * rows for t in _fields(positions)))
        return AttentionInputs(
            positions=positions,
            query_factors=concat([active, query * active], -1),
            key_factors=concat([active, key * active], -1),
            attention_mask=attention_mask,
        )

    def _stride_pool(self, tensor, axes):
        return stride_pool(tensor, axes, self.config.separate_cls, self.config.truncate_seq)

    def _pool_mask(self, mask: Tensor | None) -> Tensor | None:
        if mask is None:
            return None
        return pool_sequence(mask, "min", self.config.separate_cls, self.config.truncate_seq)

    def pool_hidden(self, hidden: Tensor) -> Tensor:
        return pool_sequence(hidden, self.config.pooling_type, self.config.separate_cls, self.config.truncate_seq)

    def pool_before_attention(self, inputs: AttentionInputs) -> AttentionInputs:
        """Pool the query side (and, without pool_q_only, the key side too) before the pooling layer."""
        positions = inputs.positions
        if self.config.pool_q_only:
            if isinstance(positions, FactorizedPositions):
                positions = FactorizedPositions(self._stride_pool(positions.phi, 0),
                                                self._stride_pool(positions.pi, 0), positions.psi, positions.omega)
            return AttentionInputs(positions, self._stride_pool(inputs.query_factors, 1), inputs.key_factors,
                                   inputs.attention_mask)
        if isinstance(positions, FactorizedPositions):
            positions = FactorizedPositions(*(self._stride_pool(t, 0) for t in _fields(positions)))
        return AttentionInputs(positions, self._stride_pool(inputs.query_factors, 1),
                               self._stride_pool(inputs.key_factors, 1), self._pool_mask(inputs.attention_mask))

    def pool_after_attention(self, inputs: AttentionInputs) -> AttentionInputs:
        """With pool_q_only, the key side follows once the pooling layer has consumed the full keys."""
        if not self.config.pool_q_only:
            return inputs
        positions = inputs.positions
        if isinstance(positions, FactorizedPositions):
            positions = FactorizedPositions(positions.phi, positions.pi, self._stride_pool(positions.psi, 0),
                                            self._stride_pool(positions.omega, 0))
        return AttentionInputs(positions, inputs.query_factors, self._stride_pool(inputs.key_factors, 1),
                               self._pool_mask(inputs.attention_mask))


def _softmax(scores: Tensor) -> Tensor:
    """Softmax over keys, in fp32 even under mixed precision (the C kernel's where it applies)."""
    dtype = scores.dtype
    if dtype != paddle.float32:
        scores = scores.astype("float32")
    probs = cpu_kernels.softmax(scores) if cpu_kernels.applies(scores) else F.softmax(scores, axis=-1)
    return probs if dtype == paddle.float32 else probs.astype(dtype)


def _fields(positions: FactorizedPositions) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return positions.phi, positions.pi, positions.psi, positions.omega


def _first_column(scores: Tensor) -> Tensor:
    """[B, H, Lq, Lk] -> [B, H, Lq, 1], dense."""
    return dense_slice(scores, 3, 0, 1)


def _zero_first_position(x: Tensor) -> Tensor:
    """[B, L, N] with row 0 set to zero (a <cls> query scores no position term)."""
    return concat([paddle.zeros_like(dense_slice(x, 1, 0, 1)), dense_slice(x, 1, 1)], 1)


class FunnelRelMultiheadAttention(nn.Layer):
    def __init__(self, config, block_index: int) -> None:
        super().__init__()
        self.config = config
        self.block_index = block_index
        d_model, n_head, d_head = config.d_model, config.n_head, config.d_head
        self.hidden_dropout = Dropout(config.hidden_dropout)
        self.attention_dropout = Dropout(config.attention_dropout)
        self.q_head = Linear(d_model, n_head * d_head, bias_attr=False)
        self.k_head = Linear(d_model, n_head * d_head)
        self.v_head = Linear(d_model, n_head * d_head)
        zeros = nn.initializer.Constant(0.0)
        self.r_w_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.r_r_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.r_kernel = self.create_parameter([d_model, n_head, d_head], default_initializer=zeros)
        self.r_s_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.seg_embed = self.create_parameter([2, n_head, d_head], default_initializer=zeros)
        self.post_proj = Linear(n_head * d_head, d_model)
        self.layer_norm = LayerNorm(d_model, epsilon=config.layer_norm_eps)
        self.scale = 1.0 / (d_head**0.5)

    def _heads(self, x: Tensor) -> Tensor:
        return split_heads(x, self.config.n_head, self.config.d_head)

    def _plus_bias(self, q: Tensor, param: Tensor) -> Tensor:
        """[B, L, H*D] queries plus an [H, D] per-head bias scaled like them (a rank-1 bias: Paddle's fast add)."""
        return add_bias(q, (param * self.scale).reshape([-1]))

    def positional_scores(self, positions, q: Tensor, context_len, shift: int) -> Tensor:
        """[B, H, Lq, Lk] relative-position term of the score (row 0 is zero with separate_cls)."""
        q_r = self._plus_bias(q, self.r_r_bias)
        if isinstance(positions, FactorizedPositions):
            # Project queries into sinusoid space once, then two matmuls give sin(a-b) / cos(a-b) terms.
            # (Parameters are never transposed: a transposed view of a parameter loses its gradient's
            # all-reduce under paddle.DataParallel. Broadcast matmul operands get equal rank: Paddle's
            # matmul backward needs it.)
            q_in_pos_space = paddle.einsum("bnih,dnh->bnid", self._heads(q_r), self.r_kernel)  # [B, H, Lq, d_model]
            return paddle.matmul(
                q_in_pos_space * positions.phi, positions.psi[None, None], transpose_y=True
            ) + paddle.matmul(q_in_pos_space * positions.pi, positions.omega[None, None], transpose_y=True)
        if self.config.separate_cls:
            q_r = _zero_first_position(q_r)
        return relative_position_scores(self._heads(q_r), self._position_heads(positions, shift), context_len, shift)

    def _position_heads(self, positions: list, shift: int) -> Tensor:
        """[1, H, T, D]: the sinusoids of this block's distances projected by r_kernel, split into heads."""
        n_head, d_head, d_model = self.config.n_head, self.config.d_head, self.config.d_model
        sinusoids = positions[self.block_index][shift - 1]  # [T, d_model]
        r_head = paddle.matmul(sinusoids, self.r_kernel.reshape([d_model, n_head * d_head]))  # [T, H*D]
        return self._heads(r_head[None])

    def segment_uv(self, q_s: Tensor) -> Tensor:
        """[B, H, Lq, 2] from the query heads plus r_s ([B, H, Lq, D]): u = (q + r_s) . seg_embed[0], the
        different-segment term, and v = (q + r_s) . seg_embed[1], the same-segment one."""
        # As heads [B, H, Lq, D] times the [H, 2, D] embeddings: 2.2x faster forward + backward than the einsum
        # "blhd,shd->bhls" on [8, 128, 12, 64] (Paddle's einsum gradient transposes on one thread).
        segments = dense_transpose(self.seg_embed, [1, 0, 2])[None]  # [1, H, 2, D]
        return paddle.matmul(q_s, segments, transpose_y=True)

    def segment_coefficients(self, q: Tensor, n_factors: int) -> Tensor:
        """[B, H, Lq, F]: query-side weights of the segment factors: the token-type term u + (v - u) * same(i, j)
        is [u, v-u, v-u, ...] . key factors (`segment_uv`)."""
        uv = self.segment_uv(self._heads(self._plus_bias(q, self.r_s_bias)))
        u, v = dense_slice(uv, 3, 0, 1), dense_slice(uv, 3, 1, 2)
        return concat([u] + [v - u] * (n_factors - 1), -1)

    def fused_probabilities(self, projected: Tensor, k: Tensor, inputs: AttentionInputs, context_len: int,
                            shift: int) -> Tensor:
        """The attention probabilities of the relative-shift form on the C kernels, from the unscaled query
        projection [B, Lq, H*D]: its three biased, scaled head splits in one pass (`cpu_kernels.biased_heads`),
        and every score term added and the softmax taken in one more (`cpu_kernels.attention_softmax`: the content
        and position products, the token type's (u, v), and the constants the layers of a block share,
        `AttentionInputs.pair_terms`), instead of concatenated query and key factors, a shift, a sum and a
        softmax, each a pass over the [B, H, Lq, Lk] scores with its gradient (measured: RESULTS.md "Training
        step")."""
        q_w, q_r, q_s = cpu_kernels.biased_heads(projected, [self.r_w_bias, self.r_r_bias, self.r_s_bias],
                                                 self.config.n_head, self.scale)
        position, n_chunks, chunk, width = unshifted_position_scores(
            q_r, self._position_heads(inputs.positions, shift), context_len, shift)
        content = paddle.matmul(q_w, k, transpose_y=True)
        pair_diff, pair_same, key_bias = inputs.pair_terms()
        return cpu_kernels.attention_softmax(content, position, self.segment_uv(q_s), pair_diff, pair_same, key_bias,
                                             n_chunks, chunk, width, shift, self.config.separate_cls)

    def bilinear_scores(self, q: Tensor, k: Tensor, inputs: AttentionInputs, positional: Tensor | None) -> Tensor:
        """content + token type (+ mask, + <cls> column correction of `positional`) in one matmul."""
        n_head = self.config.n_head
        query_parts = [self._heads(self._plus_bias(q, self.r_w_bias)),
                       self.segment_coefficients(q, inputs.query_factors.shape[-1]) * inputs.query_factors[:, None]]
        key_parts = [inputs.key_factors]
        if inputs.attention_mask is not None:
            penalty = MASK_PENALTY_FP16 if k.dtype == paddle.float16 else MASK_PENALTY
            query_parts.append(paddle.ones_like(query_parts[0][:, :, :, :1]))
            key_parts.append((-penalty * (1.0 - inputs.attention_mask.astype(k.dtype)))[:, :, None])
        if positional is not None and self.config.separate_cls:
            # The shifted position scores have no zero <cls> column: subtract it here.
            query_parts.append(-_first_column(positional))
            key_parts.append(1.0 - inputs.key_factors[:, :, :1])  # 1 at position 0
        key_extra = paddle.stack([concat(key_parts, -1)] * n_head, axis=1)  # same for every head
        return paddle.matmul(concat(query_parts, -1), concat([k, key_extra], -1),
                             transpose_y=True)

    def cls_scores(self, q: Tensor, k: Tensor, inputs: AttentionInputs) -> Tensor:
        """[B, H, 1, Lk]: the <cls> query's scores under separate_cls, content (+ mask) only: its position term
        is zeroed (`_zero_first_position`, or the factorized tables' zero row) and its token-type factors are
        zero, so dropping both leaves the full computation's row 0."""
        if not self.config.separate_cls:
            raise ValueError("a <cls>-only query is exact only with separate_cls")
        cls_inputs = AttentionInputs(None, dense_slice(inputs.query_factors, 1, 0, 1), inputs.key_factors,
                                     inputs.attention_mask)
        # The position parameters still get their (zero) gradients, as in the full computation: AdamW then decays
        # them alike, and DataParallel's all-reduce, which waits for every parameter's gradient, does not hang.
        unused = (self.r_r_bias.sum() + self.r_kernel.sum()) * 0.0
        return self.bilinear_scores(q, k, cls_inputs, None) + unused

    def forward(self, query: Tensor, key: Tensor, value: Tensor, inputs: AttentionInputs,
                output_attentions: bool = False, pooling: bool = False, cls_query: bool = False):
        """`pooling`: this is the first layer of a pooled block (pooled queries, and with pool_q_only,
        full-length keys). `cls_query`: `query` is the <cls> row alone ([B, 1, D]) of a separate_cls model,
        whose scores have no position or token-type term (`FunnelEncoder.last_layer_for_cls`)."""
        projected = self.q_head(query)  # [B, Lq, H*D], no bias
        k = project_heads(self.k_head, key, self.config.n_head)
        v = project_heads(self.v_head, value, self.config.n_head)
        shift = 2 if pooling and self.config.pool_q_only else 1
        relative_shift_positions = not isinstance(inputs.positions, FactorizedPositions)
        if not cls_query and relative_shift_positions and cpu_kernels.applies(projected, k):
            probs = self.fused_probabilities(projected, k, inputs, dim(key, 1), shift)
        else:
            q = projected * self.scale
            if cls_query:
                scores = self.cls_scores(q, k, inputs)
            else:
                positional = self.positional_scores(inputs.positions, q, dim(key, 1), shift)
                scores = self.bilinear_scores(q, k, inputs, positional if relative_shift_positions else None)
                scores = scores + positional
            probs = _softmax(scores)
        probs = self.attention_dropout(probs)

        context = merge_heads(paddle.matmul(probs, v))  # [B, Lq, H*D]
        output = add_and_norm(self.post_proj, context, self.hidden_dropout, query, self.layer_norm)
        return (output, probs) if output_attentions else (output,)
