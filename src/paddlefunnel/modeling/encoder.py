"""Blocks of layers with pooling between them (encoder) and the full-length decoder on top."""

from __future__ import annotations

import paddle
import paddle.nn as nn
from paddle.distributed.fleet.utils import recompute

from .activations import activation_of_linear, get_activation
from .attention import AttentionStructure, FunnelRelMultiheadAttention
from .ops import Dropout, LayerNorm, Linear, add_and_norm, dense_slice, dim
from .outputs import BaseModelOutput
from .pooling import can_pool, num_poolings, upsample

Tensor = paddle.Tensor


class FunnelPositionwiseFFN(nn.Layer):
    def __init__(self, config) -> None:
        super().__init__()
        self.linear_1 = Linear(config.d_model, config.d_inner)
        self.activation_function = get_activation(config.hidden_act)
        self.activation_dropout = Dropout(config.activation_dropout)
        self.linear_2 = Linear(config.d_inner, config.d_model)
        self.dropout = Dropout(config.hidden_dropout)
        self.layer_norm = LayerNorm(config.d_model, epsilon=config.layer_norm_eps)

    def forward(self, hidden: Tensor) -> Tensor:
        inner = self.activation_dropout(activation_of_linear(self.activation_function, self.linear_1, hidden))
        return add_and_norm(self.linear_2, inner, self.dropout, hidden, self.layer_norm)


class FunnelLayer(nn.Layer):
    def __init__(self, config, block_index: int) -> None:
        super().__init__()
        self.attention = FunnelRelMultiheadAttention(config, block_index)
        self.ffn = FunnelPositionwiseFFN(config)

    def forward(self, query, key, value, attention_inputs, output_attentions: bool = False, pooling: bool = False,
                cls_query: bool = False):
        attended = self.attention(query, key, value, attention_inputs, output_attentions=output_attentions,
                                  pooling=pooling, cls_query=cls_query)
        return (self.ffn(attended[0]), *attended[1:])


def run_layer(layer: FunnelLayer, checkpointing: bool, *args, **kwargs):
    """`layer(*args, **kwargs)`, or with activation recomputation when `checkpointing` and it matters.

    Recomputation keeps only the layer's inputs in the forward pass and runs the layer again during backward,
    trading about one more forward pass for the memory of its attention scores and FFN activations; it only
    pays when gradients are being recorded in training. Paddle's hook-based variant (`use_reentrant=False`)
    sees every tensor the layer uses, including those inside `AttentionInputs`, and `preserve_rng_state`
    replays the forward pass's random state so dropout draws the same masks again.
    """
    if checkpointing and layer.training and paddle.is_grad_enabled():
        return recompute(layer, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)
    return layer(*args, **kwargs)


def _pack(hidden, all_hidden, all_attentions, return_dict):
    if return_dict:
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)
    return tuple(v for v in (hidden, all_hidden, all_attentions) if v is not None)


class FunnelEncoder(nn.Layer):
    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = False  # recompute each layer in backward (FunnelPreTrainedModel switches it)
        self.attention_structure = AttentionStructure(config)
        self.blocks = nn.LayerList(
            [
                nn.LayerList([FunnelLayer(config, block_index) for _ in range(block_size)])
                for block_index, block_size in enumerate(config.block_sizes)
            ]
        )

    def _can_pool(self, hidden: Tensor, block_index: int) -> bool:
        return block_index > 0 and can_pool(dim(hidden, 1), self.config.separate_cls)

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        first_token_only: bool = False,
    ):
        """`first_token_only`: return the last layer's output at the first position (<cls>) only, [B, 1, D]: all
        that the sentence-level heads read. With separate_cls (every released Funnel), the <cls> query scores
        content and mask only, so the last layer then runs its query side (query projection, attention rows,
        output projection, FFN) on that one position (`last_layer_for_cls`); keys and values still cover the
        whole sequence, and the result equals the full layer's row 0. Small-base, 8 x 128: 2.8% of the forward
        FLOPs."""
        structure = self.attention_structure
        attention_mask = None if attention_mask is None else attention_mask.astype(inputs_embeds.dtype)
        attention_inputs = structure.init_inputs(inputs_embeds, attention_mask, token_type_ids)
        hidden = inputs_embeds
        all_hidden = (inputs_embeds,) if output_hidden_states else None
        all_attentions = () if output_attentions else None

        cls_only = first_token_only and self.last_layer_for_cls(output_attentions, output_hidden_states)
        last_application = (len(self.blocks) - 1, len(self.blocks[-1]) - 1, self.config.block_repeats[-1] - 1)
        for block_index, block in enumerate(self.blocks):
            pooling = self._can_pool(hidden, block_index)
            if pooling:
                pooled_hidden = structure.pool_hidden(hidden)
                attention_inputs = structure.pool_before_attention(attention_inputs)
            for layer_index, layer in enumerate(block):
                for repeat_index in range(self.config.block_repeats[block_index]):
                    # Only the block's first layer application attends from the pooled sequence.
                    pooling_layer = pooling and layer_index == 0 and repeat_index == 0
                    if pooling_layer:
                        query = pooled_hidden
                        key = value = hidden if self.config.pool_q_only else pooled_hidden
                    else:
                        query = key = value = hidden
                    cls_query = cls_only and (block_index, layer_index, repeat_index) == last_application
                    if cls_query:
                        query = dense_slice(query, 1, 0, 1)
                    outputs = run_layer(layer, self.gradient_checkpointing, query, key, value, attention_inputs,
                                        output_attentions=output_attentions, pooling=pooling_layer,
                                        cls_query=cls_query)
                    hidden = outputs[0]
                    if pooling_layer:
                        attention_inputs = structure.pool_after_attention(attention_inputs)
                    if output_attentions:
                        all_attentions = all_attentions + (outputs[1],)
                    if output_hidden_states:
                        all_hidden = all_hidden + (hidden,)
        if first_token_only and not cls_only:
            hidden = dense_slice(hidden, 1, 0, 1)
        return _pack(hidden, all_hidden, all_attentions, return_dict)

    def last_layer_for_cls(self, output_attentions: bool, output_hidden_states: bool) -> bool:
        """Can the last layer run for <cls> alone? Only with separate_cls (elsewhere <cls> gets position and
        token-type terms too) and when no per-position output of that layer is asked for."""
        return self.config.separate_cls and not (output_attentions or output_hidden_states)


class FunnelDecoder(nn.Layer):
    """Restores full length: upsampled last block + first block output, then full-length layers."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = False
        self.attention_structure = AttentionStructure(config)
        self.layers = nn.LayerList([FunnelLayer(config, 0) for _ in range(config.num_decoder_layers)])

    def forward(
        self,
        final_hidden: Tensor,
        first_block_hidden: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        config = self.config
        seq_len = dim(first_block_hidden, 1)
        # Short inputs stop pooling early; undo only the poolings that happened (the reference assumes all
        # blocks pooled, which is the same whenever the input is long enough for it to run).
        poolings = num_poolings(seq_len, config.num_blocks, config.separate_cls, config.truncate_seq)
        upsampled = upsample(
            final_hidden,
            stride=2**poolings,
            target_len=seq_len,
            separate_cls=self.config.separate_cls,
            truncate_seq=self.config.truncate_seq,
        )
        hidden = upsampled + first_block_hidden
        all_hidden = (hidden,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        attention_inputs = self.attention_structure.init_inputs(hidden, attention_mask, token_type_ids)
        for layer in self.layers:
            outputs = run_layer(layer, self.gradient_checkpointing, hidden, hidden, hidden, attention_inputs,
                                output_attentions=output_attentions)
            hidden = outputs[0]
            if output_attentions:
                all_attentions = all_attentions + (outputs[1],)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
        return _pack(hidden, all_hidden, all_attentions, return_dict)
