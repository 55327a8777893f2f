"""Relative multi-head attention: score = content + relative position + token type (paper, section 2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .pooling import pool_sequence, stride_pool
from .positions import FactorizedPositions, PositionEncoder, relative_shift

Tensor = paddle.Tensor

CLS_TOKEN_TYPE = 2  # <cls> gets token type 2 and counts as part of both segments
MASK_PENALTY = 1e6


def same_segment_matrix(token_type_ids: Tensor) -> Tensor:
    """[B, L] ids -> [B, L, L] bool: may the two tokens use the "same segment" bias? (<cls> always may)."""
    same = token_type_ids[:, :, None] == token_type_ids[:, None, :]
    is_cls = token_type_ids == CLS_TOKEN_TYPE
    return same | is_cls[:, :, None] | is_cls[:, None, :]


def cls_pair_mask(seq_len: int, dtype: str) -> Tensor:
    """[L, L] with zeros on row 0 and column 0: pairs involving <cls> see content only."""
    return F.pad(paddle.ones([seq_len - 1, seq_len - 1], dtype=dtype), [1, 0, 1, 0])


@dataclass
class AttentionInputs:
    """What every layer of a block needs besides the hidden states; pooled along with them."""

    positions: Any  # list of per-block tables (relative_shift) or FactorizedPositions
    token_type_mat: Tensor | None  # [B, Lq, Lk] bool
    attention_mask: Tensor | None  # [B, Lk] float, 1 = attend
    cls_mask: Tensor | None  # [Lq, Lk] float, or None without separate_cls


class AttentionStructure(nn.Layer):
    """Prepares `AttentionInputs` and pools them exactly where the hidden states are pooled."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.position_encoder = PositionEncoder(config)

    def init_inputs(self, inputs_embeds: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None):
        seq_len = inputs_embeds.shape[1]
        dtype = inputs_embeds.dtype
        return AttentionInputs(
            positions=self.position_encoder(seq_len, dtype),
            token_type_mat=None if token_type_ids is None else same_segment_matrix(token_type_ids),
            attention_mask=attention_mask,
            cls_mask=cls_pair_mask(seq_len, dtype) if self.config.separate_cls else None,
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
                positions = dataclasses.replace(
                    positions, phi=self._stride_pool(positions.phi, 0), pi=self._stride_pool(positions.pi, 0)
                )
            return AttentionInputs(
                positions=positions,
                token_type_mat=self._stride_pool(inputs.token_type_mat, 1),
                attention_mask=inputs.attention_mask,
                cls_mask=self._stride_pool(inputs.cls_mask, 0),
            )
        if isinstance(positions, FactorizedPositions):
            positions = FactorizedPositions(*(self._stride_pool(t, 0) for t in dataclasses.astuple(positions)))
        return AttentionInputs(
            positions=positions,
            token_type_mat=self._stride_pool(inputs.token_type_mat, (1, 2)),
            attention_mask=self._pool_mask(inputs.attention_mask),
            cls_mask=self._stride_pool(inputs.cls_mask, (0, 1)),
        )

    def pool_after_attention(self, inputs: AttentionInputs) -> AttentionInputs:
        """With pool_q_only, the key side follows once the pooling layer has consumed the full keys."""
        if not self.config.pool_q_only:
            return inputs
        positions = inputs.positions
        if isinstance(positions, FactorizedPositions):
            positions = dataclasses.replace(
                positions, psi=self._stride_pool(positions.psi, 0), omega=self._stride_pool(positions.omega, 0)
            )
        return AttentionInputs(
            positions=positions,
            token_type_mat=self._stride_pool(inputs.token_type_mat, 2),
            attention_mask=self._pool_mask(inputs.attention_mask),
            cls_mask=self._stride_pool(inputs.cls_mask, 1),
        )


def _split_heads(x: Tensor, n_head: int, d_head: int) -> Tensor:
    """[B, L, H*D] -> [B, H, L, D], materialised so the matmuls below run on contiguous memory."""
    batch, length, _ = x.shape
    return x.reshape([batch, length, n_head, d_head]).transpose([0, 2, 1, 3]).contiguous()


class FunnelRelMultiheadAttention(nn.Layer):
    def __init__(self, config, block_index: int) -> None:
        super().__init__()
        self.config = config
        self.block_index = block_index
        d_model, n_head, d_head = config.d_model, config.n_head, config.d_head
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)
        self.attention_dropout = nn.Dropout(config.attention_dropout)
        self.q_head = nn.Linear(d_model, n_head * d_head, bias_attr=False)
        self.k_head = nn.Linear(d_model, n_head * d_head)
        self.v_head = nn.Linear(d_model, n_head * d_head)
        zeros = nn.initializer.Constant(0.0)
        self.r_w_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.r_r_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.r_kernel = self.create_parameter([d_model, n_head, d_head], default_initializer=zeros)
        self.r_s_bias = self.create_parameter([n_head, d_head], default_initializer=zeros)
        self.seg_embed = self.create_parameter([2, n_head, d_head], default_initializer=zeros)
        self.post_proj = nn.Linear(n_head * d_head, d_model)
        self.layer_norm = nn.LayerNorm(d_model, epsilon=config.layer_norm_eps)
        self.scale = 1.0 / (d_head**0.5)

    def _bias(self, param: Tensor) -> Tensor:
        """[H, D] per-head bias, scaled like the query, shaped to broadcast over [B, H, L, D]."""
        return (param * self.scale)[None, :, None, :]

    def positional_scores(self, positions, q: Tensor, context_len: int) -> Tensor:
        """[B, H, Lq, Lk] relative-position term of the score."""
        n_head, d_head, d_model = self.config.n_head, self.config.d_head, self.config.d_model
        q_r = q + self._bias(self.r_r_bias)
        if isinstance(positions, FactorizedPositions):
            # Project queries into sinusoid space once, then two matmuls give sin(a-b) / cos(a-b) terms.
            # (Parameters are never transposed: a transposed view of a parameter loses its gradient's
            # all-reduce under paddle.DataParallel. Broadcast matmul operands get equal rank: Paddle's
            # matmul backward needs it.)
            q_in_pos_space = paddle.einsum("bnih,dnh->bnid", q_r, self.r_kernel)  # [B, H, Lq, d_model]
            return paddle.matmul(
                q_in_pos_space * positions.phi, positions.psi[None, None], transpose_y=True
            ) + paddle.matmul(q_in_pos_space * positions.pi, positions.omega[None, None], transpose_y=True)
        shift = 1 if q.shape[2] == context_len else 2
        sinusoids = positions[self.block_index][shift - 1]  # [T, d_model]
        r_head = paddle.matmul(sinusoids, self.r_kernel.reshape([d_model, n_head * d_head]))
        r_head = r_head.reshape([1, -1, n_head, d_head]).transpose([0, 2, 1, 3]).contiguous()  # [1, H, T, D]
        scores = paddle.matmul(q_r, r_head, transpose_y=True)  # [B, H, Lq, T]
        return relative_shift(scores, context_len, shift)

    def token_type_scores(self, token_type_mat: Tensor, q: Tensor) -> Tensor:
        """[B, H, Lq, Lk]: one learned bias for same-segment pairs, another for cross-segment pairs."""
        # seg_embed[0]: different segments, [1]: same segment. einsum, not a transposed view (see above).
        bias = paddle.einsum("bnid,snd->bnis", q + self._bias(self.r_s_bias), self.seg_embed)  # [B, H, Lq, 2]
        different, same = bias[..., 0:1], bias[..., 1:2]
        return paddle.where(token_type_mat[:, None], same, different)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, inputs: AttentionInputs, output_attentions=False):
        n_head, d_head = self.config.n_head, self.config.d_head
        batch, q_len, _ = query.shape
        context_len = key.shape[1]
        q = _split_heads(self.q_head(query), n_head, d_head) * self.scale
        k = _split_heads(self.k_head(key), n_head, d_head)
        v = _split_heads(self.v_head(value), n_head, d_head)

        content = paddle.matmul(q + self._bias(self.r_w_bias), k, transpose_y=True)
        relative = self.positional_scores(inputs.positions, q, context_len)
        if inputs.token_type_mat is not None:
            relative = relative + self.token_type_scores(inputs.token_type_mat, q)
        if inputs.cls_mask is not None:
            relative = relative * inputs.cls_mask
        scores = content + relative

        dtype = scores.dtype
        scores = scores.astype("float32")  # mask in fp32 even under mixed precision
        if inputs.attention_mask is not None:
            scores = scores - MASK_PENALTY * (1.0 - inputs.attention_mask.astype("float32")[:, None, None, :])
        probs = self.attention_dropout(F.softmax(scores, axis=-1).astype(dtype))

        context = paddle.matmul(probs, v)  # [B, H, Lq, D]
        context = context.transpose([0, 2, 1, 3]).reshape([batch, q_len, n_head * d_head])
        output = self.layer_norm(query + self.hidden_dropout(self.post_proj(context)))
        return (output, probs) if output_attentions else (output,)
