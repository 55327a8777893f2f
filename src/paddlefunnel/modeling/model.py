"""The Funnel bodies: FunnelBaseModel (encoder only, compressed output) and FunnelModel (with decoder)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn

from ..checkpoint import load_pretrained, save_pretrained
from ..config import FunnelConfig
from .attention import FunnelRelMultiheadAttention
from .embeddings import FunnelEmbeddings
from .encoder import FunnelDecoder, FunnelEncoder
from .inputs import prepare_inputs
from .outputs import BaseModelOutput

Tensor = paddle.Tensor


class FunnelPreTrainedModel(nn.Layer):
    """Shared behaviour: config handling, the reference's initialisation, loading and saving."""

    base_model_prefix = "funnel"
    config_class = FunnelConfig

    def __init__(self, config: FunnelConfig) -> None:
        super().__init__()
        if not isinstance(config, FunnelConfig):
            raise TypeError(f"config must be a FunnelConfig, got {type(config).__name__}")
        self.config = config

    # --------------------------------------------------------------------------------- initialisation
    def init_weights(self) -> None:
        """Initialise every parameter as `transformers` does for a model trained from scratch."""
        for layer in self.sublayers(include_self=True):
            self._init_layer(layer)

    def _init_layer(self, layer: nn.Layer) -> None:
        config = self.config
        if isinstance(layer, nn.Linear):
            fan_in, fan_out = layer.weight.shape
            std = config.initializer_std or math.sqrt(1.0 / (fan_in + fan_out))
            nn.initializer.Normal(0.0, std)(layer.weight)
            if layer.bias is not None:
                nn.initializer.Constant(0.0)(layer.bias)
        elif isinstance(layer, FunnelRelMultiheadAttention):
            uniform = nn.initializer.Uniform(0.0, config.initializer_range)
            for param in (layer.r_w_bias, layer.r_r_bias, layer.r_kernel, layer.r_s_bias, layer.seg_embed):
                uniform(param)
        elif isinstance(layer, FunnelEmbeddings):
            weight = layer.word_embeddings.weight
            nn.initializer.Normal(0.0, config.initializer_std or 1.0)(weight)
            if config.pad_token_id is not None:
                with paddle.no_grad():
                    weight[config.pad_token_id] = 0.0
        elif hasattr(layer, "projection") and "weight" in layer._parameters:  # untied LM head
            fan_out, fan_in = layer.weight.shape
            nn.initializer.Normal(0.0, config.initializer_std or math.sqrt(1.0 / (fan_in + fan_out)))(layer.weight)
        elif isinstance(layer, nn.LayerNorm):
            nn.initializer.Constant(1.0)(layer.weight)
            nn.initializer.Constant(0.0)(layer.bias)

    def _post_init(self) -> None:
        """Initialise what this class added; a body built inside a head model initialised itself already."""
        body = getattr(self, self.base_model_prefix, None)
        done = {id(layer) for layer in body.sublayers(include_self=True)} if body is not None else set()
        for layer in self.sublayers(include_self=True):
            if id(layer) not in done:
                self._init_layer(layer)

    # ------------------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any):
        """Load from a paddlefunnel or HuggingFace directory, or a weights file with config.json beside it."""
        return load_pretrained(cls, path, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike, hf_format: bool = False) -> None:
        """Write `config.json` + `model.safetensors` (Paddle layout, or HF layout with hf_format=True)."""
        save_pretrained(self, directory, hf_format=hf_format)

    def num_parameters(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    def _embed(self, input_ids, attention_mask, token_type_ids, inputs_embeds):
        """Checked inputs with the reference's defaults, and the embedded tokens (bodies only)."""
        input_ids, attention_mask, token_type_ids, inputs_embeds = prepare_inputs(
            input_ids, attention_mask, token_type_ids, inputs_embeds
        )
        return self.embeddings(input_ids, inputs_embeds=inputs_embeds), attention_mask, token_type_ids

    # ------------------------------------------------------------------------- activation recomputation
    supports_gradient_checkpointing = True

    def gradient_checkpointing_enable(self) -> None:
        """Recompute every encoder and decoder layer's activations during backward instead of keeping them
        (HuggingFace's name for it): less memory for long inputs, about one more forward pass of time. Acts only
        in training mode with gradients on; results and gradients are unchanged."""
        self._set_gradient_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self._set_gradient_checkpointing(False)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(layer.gradient_checkpointing for layer in self._stacks())

    def _set_gradient_checkpointing(self, enabled: bool) -> None:
        for layer in self._stacks():
            layer.gradient_checkpointing = enabled

    def _stacks(self) -> list[nn.Layer]:
        return [layer for layer in self.sublayers(include_self=True) if isinstance(layer, (FunnelEncoder, FunnelDecoder))]

    def get_input_embeddings(self) -> nn.Embedding:
        return self._body().embeddings.word_embeddings

    def _body(self):
        return getattr(self, self.base_model_prefix, self)


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


class FunnelBaseModel(FunnelPreTrainedModel):
    """Embeddings + pooled encoder: the compressed sequence, for sentence-level tasks."""

    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.embeddings = FunnelEmbeddings(config)
        self.encoder = FunnelEncoder(config)
        self._post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        first_token_only: bool = False,
    ):
        """`first_token_only` (not in the reference): `last_hidden_state` holds the first position only, [B, 1, D],
        and the last layer skips the work the other positions need where that is exact (`FunnelEncoder.forward`);
        what the sentence-level heads use."""
        config = self.config
        embedded, attention_mask, token_type_ids = self._embed(input_ids, attention_mask, token_type_ids, inputs_embeds)
        return self.encoder(
            embedded,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_attentions=_flag(output_attentions, config.output_attentions),
            output_hidden_states=_flag(output_hidden_states, config.output_hidden_states),
            return_dict=_flag(return_dict, config.return_dict),
            first_token_only=first_token_only,
        )


class FunnelModel(FunnelPreTrainedModel):
    """Encoder + decoder: one vector per input token again, for token-level tasks."""

    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.embeddings = FunnelEmbeddings(config)
        self.encoder = FunnelEncoder(config)
        self.decoder = FunnelDecoder(config)
        self._post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        config = self.config
        output_attentions = _flag(output_attentions, config.output_attentions)
        output_hidden_states = _flag(output_hidden_states, config.output_hidden_states)
        return_dict = _flag(return_dict, config.return_dict)
        embedded, attention_mask, token_type_ids = self._embed(input_ids, attention_mask, token_type_ids, inputs_embeds)
        encoded = self.encoder(
            embedded,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_attentions=output_attentions,
            output_hidden_states=True,  # the decoder needs the first block's output
            return_dict=True,
        )
        decoded = self.decoder(
            final_hidden=encoded.last_hidden_state,
            # As in the reference: entry block_sizes[0] of hidden_states. It is the first block's output
            # unless block_repeats[0] > 1, where the reference takes a state inside the first block; kept for
            # checkpoint compatibility.
            first_block_hidden=encoded.hidden_states[config.block_sizes[0]],
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        output = BaseModelOutput(
            last_hidden_state=decoded.last_hidden_state,
            hidden_states=encoded.hidden_states + decoded.hidden_states if output_hidden_states else None,
            attentions=encoded.attentions + decoded.attentions if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()
