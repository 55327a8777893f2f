"""Parameters and forward FLOPs of a Funnel configuration, and of a BERT of the same size.

The paper's efficiency claim: compressing the sequence block by block makes a Funnel cheaper than a
full-length Transformer with the same layers (or deeper for the same cost). Counts here are derived from
the configuration by the same length arithmetic the model uses, never typed in.

FLOPs are 2 x multiply-adds of the matrix products (what dominates; element-wise work is left out), for a
batch of sequences, forward only. Funnel's relative-position term is counted as this model computes it: the
sinusoid table is projected (once per batch); where the banded form applies (`positions.band_chunk`: from 256 keys
on), each chunk of c queries is scored against its `shift * c + Lk` distances, else (and in the reference) every
query against all `shift * Lq + Lk` distances before the relative shift picks the needed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import FunnelConfig
from ..errors import InputError
from ..registry import BASE_BODY, BODY
from .pooling import can_pool, pooled_length
from .positions import band_chunk

BERT_MAX_POSITIONS = 512
BERT_TOKEN_TYPES = 2


@dataclass(frozen=True)
class LayerShape:
    """One application of an attention + FFN layer: query length, key length, relative-shift `shift`;
    `cls_query`: the <cls> query alone, without position term (the last layer under `first_token_only`)."""

    where: str
    q_len: int
    k_len: int
    shift: int = 1
    cls_query: bool = False


@dataclass
class Cost:
    """Parameter count and forward FLOPs of a batch, with a breakdown by part."""

    name: str
    seq_len: int
    batch: int
    parameters: int
    flops: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


# ---------------------------------------------------------------------------------------- shapes
def encoder_layer_shapes(config: FunnelConfig, seq_len: int) -> list[LayerShape]:
    """Every layer application of the encoder, with the lengths pooling leaves (short inputs stop early)."""
    shapes, length = [], seq_len
    for block, (size, repeats) in enumerate(zip(config.block_sizes, config.block_repeats)):
        pooled = block > 0 and can_pool(length, config.separate_cls)
        previous = length
        if pooled:
            length = pooled_length(length, config.separate_cls, config.truncate_seq)
        for layer in range(size):
            for repeat in range(repeats):
                first = pooled and layer == 0 and repeat == 0
                keys = previous if first and config.pool_q_only else length
                shapes.append(LayerShape(f"block {block}", length, keys, 2 if first and config.pool_q_only else 1))
    return shapes


def decoder_layer_shapes(config: FunnelConfig, seq_len: int) -> list[LayerShape]:
    return [LayerShape("decoder", seq_len, seq_len) for _ in range(config.num_decoder_layers)]


# ---------------------------------------------------------------------------------------- FLOPs
def attention_layer_flops(config: FunnelConfig, shape: LayerShape, batch: int = 1) -> dict[str, int]:
    """FLOPs of one Funnel layer application on `batch` sequences, by part."""
    d_model, heads, d_head, d_inner = config.d_model, config.n_head, config.d_head, config.d_inner
    width = heads * d_head
    lq, lk = shape.q_len, shape.k_len
    if shape.cls_query:
        position = 0
    elif config.attention_type == "factorized":
        # queries into sinusoid space, then two [Lq, d_model] x [d_model, Lk] products per head
        position = batch * (2 * heads * lq * d_head * d_model + 2 * 2 * heads * lq * lk * d_model)
    else:
        table = shape.shift * lq + lk
        chunk = band_chunk(lq, lk)
        rows, distances = (lq, table) if chunk is None else (-(-lq // chunk) * chunk, shape.shift * chunk + lk)
        position = 2 * table * d_model * width + batch * 2 * heads * rows * distances * d_head
    return {
        "projections": batch * (2 * lq * d_model * width + 2 * 2 * lk * d_model * width + 2 * lq * width * d_model),
        "attention": batch * (2 * 2 * heads * lq * lk * d_head + 2 * heads * lq * d_head * 2),  # content, PV, type
        "position": position,
        "ffn": batch * 2 * 2 * lq * d_model * d_inner,
    }


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def _check_sizes(seq_len: int, batch: int) -> None:
    if seq_len < 1 or batch < 1:
        raise InputError(f"seq_len={seq_len}, batch={batch}: expected positive numbers")


def funnel_cost(config: FunnelConfig, seq_len: int, decoder: bool = True, batch: int = 1,
                first_token_only: bool = False) -> Cost:
    """FunnelModel (decoder=True) or FunnelBaseModel (decoder=False) on `batch` sequences of `seq_len` tokens;
    `first_token_only`: FunnelBaseModel as the sentence-level heads run it (the last layer for <cls> alone where
    that is exact, see `FunnelEncoder.forward`)."""
    _check_sizes(seq_len, batch)
    shapes = encoder_layer_shapes(config, seq_len)
    if first_token_only and not decoder and config.separate_cls:
        shapes[-1] = LayerShape(shapes[-1].where, 1, shapes[-1].k_len, shapes[-1].shift, cls_query=True)
    shapes += decoder_layer_shapes(config, seq_len) if decoder else []
    parts: dict[str, int] = {}
    for shape in shapes:
        _add(parts, attention_layer_flops(config, shape, batch))
    name = BODY if decoder else BASE_BODY
    return Cost(name, seq_len, batch, funnel_parameters(config, decoder), sum(parts.values()), parts)


def funnel_parameters(config: FunnelConfig, decoder: bool = True) -> int:
    """Parameters of FunnelModel / FunnelBaseModel (weights shared by block repeats count once)."""
    d_model, width, d_inner = config.d_model, config.n_head * config.d_head, config.d_inner
    layer = (d_model * width                      # q_head (no bias)
             + 2 * (d_model * width + width)      # k_head, v_head
             + 3 * width                          # r_w_bias, r_r_bias, r_s_bias
             + d_model * width                    # r_kernel
             + 2 * width                          # seg_embed
             + width * d_model + d_model          # post_proj
             + 2 * d_model                        # attention layer norm
             + d_model * d_inner + d_inner + d_inner * d_model + d_model + 2 * d_model)  # FFN + its norm
    layers = sum(config.block_sizes) + (config.num_decoder_layers if decoder else 0)
    return config.vocab_size * d_model + 2 * d_model + layers * layer


def bert_layers(config: FunnelConfig, decoder: bool = True) -> int:
    """A same-size BERT: one full-length layer for every layer application of the Funnel."""
    applications = sum(size * repeats for size, repeats in zip(config.block_sizes, config.block_repeats))
    return applications + (config.num_decoder_layers if decoder else 0)


def bert_cost(config: FunnelConfig, seq_len: int, layers: int, batch: int = 1) -> Cost:
    """BERT with the Funnel's widths (d_model, heads x d_head, d_inner) and `layers` full-length layers
    (absolute position and token-type embeddings; no pooler), on `batch` sequences."""
    _check_sizes(seq_len, batch)
    d_model, heads, d_head, d_inner = config.d_model, config.n_head, config.d_head, config.d_inner
    width = heads * d_head
    per_layer = {
        "projections": 2 * 3 * seq_len * d_model * width + 2 * seq_len * width * d_model,
        "attention": 2 * 2 * heads * seq_len * seq_len * d_head,
        "position": 0,
        "ffn": 2 * 2 * seq_len * d_model * d_inner,
    }
    parts = {key: value * layers * batch for key, value in per_layer.items()}
    layer_params = (3 * (d_model * width + width) + width * d_model + d_model + 2 * d_model
                    + d_model * d_inner + d_inner + d_inner * d_model + d_model + 2 * d_model)
    embeddings = (config.vocab_size + BERT_MAX_POSITIONS + BERT_TOKEN_TYPES) * d_model + 2 * d_model
    return Cost(f"BERT ({layers} layers)", seq_len, batch, embeddings + layers * layer_params, sum(parts.values()),
                parts)


def compare_with_bert(config: FunnelConfig, seq_len: int, batch: int = 1) -> list[Cost]:
    """FunnelBaseModel, FunnelModel and the same-size BERT of each, at `seq_len`."""
    return [funnel_cost(config, seq_len, False, batch), bert_cost(config, seq_len, bert_layers(config, False), batch),
            funnel_cost(config, seq_len, True, batch), bert_cost(config, seq_len, bert_layers(config, True), batch)]


def format_comparison(preset: str, config: FunnelConfig, seq_len: int, batch: int = 1) -> str:
    rows = compare_with_bert(config, seq_len, batch)
    lines = [f"{preset}: blocks {config.block_sizes} (repeats {config.block_repeats}), d_model {config.d_model}, "
             f"{config.n_head} heads x {config.d_head}, d_inner {config.d_inner}; batch {batch} x {seq_len} tokens; "
             f"forward FLOPs (2 x multiply-adds of matrix products)",
             "",
             "| model | parameters | GFLOPs | vs BERT | projections | attention | position | FFN |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for funnel, bert in ((rows[0], rows[1]), (rows[2], rows[3])):
        for cost in (funnel, bert):
            ratio = f"{cost.flops / bert.flops:.2f}x"
            cells = " | ".join(f"{cost.parts[k] / 1e9:.2f}" for k in ("projections", "attention", "position", "ffn"))
            lines.append(f"| {cost.name} | {cost.parameters / 1e6:.1f}M | {cost.gflops:.2f} | {ratio} | {cells} |")
    return "\n".join(lines)
