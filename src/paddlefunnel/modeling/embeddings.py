"""Token embeddings: Funnel has no absolute position or segment tables (both live in the attention)."""

from __future__ import annotations

import paddle
import paddle.nn as nn

from .ops import Dropout, LayerNorm


class FunnelEmbeddings(nn.Layer):
    def __init__(self, config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.layer_norm = LayerNorm(config.d_model, epsilon=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout)

    def forward(self, input_ids: paddle.Tensor | None = None, inputs_embeds: paddle.Tensor | None = None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        return self.dropout(self.layer_norm(inputs_embeds))
