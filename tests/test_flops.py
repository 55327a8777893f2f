"""Parameter and FLOP counts: derived from the configuration, checked against the model itself."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelBaseModel, FunnelConfig, FunnelModel
from paddlefunnel.modeling.flops import (
    bert_cost,
    bert_layers,
    compare_with_bert,
    encoder_layer_shapes,
    funnel_cost,
    funnel_parameters,
)

CONFIGS = [tiny(), tiny(block_repeats=[1, 2, 2]), tiny(n_head=3, d_head=5, num_decoder_layers=3),
           tiny(separate_cls=False, truncate_seq=False, block_sizes=[1, 1, 1, 1])]


@pytest.mark.parametrize("overrides", CONFIGS)
def test_parameter_count_equals_the_models(overrides):
    config = FunnelConfig(**overrides)
    assert funnel_parameters(config, decoder=True) == FunnelModel(config).num_parameters()
    assert funnel_parameters(config, decoder=False) == FunnelBaseModel(config).num_parameters()


@pytest.mark.parametrize("preset, full, base", [("small", 131.0, 115.6), ("medium", 131.0, 115.6),
                                                ("intermediate", 177.1, 161.7), ("large", 386.1, 358.8),
                                                ("xlarge", 468.0, 440.7)])
def test_released_sizes(preset, full, base):
    """The released checkpoints' sizes (millions, from their HuggingFace files)."""
    config = FunnelConfig.from_preset(preset)
    assert round(funnel_parameters(config, True) / 1e6, 1) == full
    assert round(funnel_parameters(config, False) / 1e6, 1) == base


@pytest.mark.parametrize("overrides", CONFIGS)
@pytest.mark.parametrize("seq_len", [2, 5, 13, 24])
def test_layer_lengths_follow_the_models_pooling(overrides, seq_len):
    config = FunnelConfig(**overrides)
    model = FunnelBaseModel(config)
    out = model(input_ids=np.full((1, seq_len), 9), output_hidden_states=True)
    observed = [h.shape[1] for h in out.hidden_states[1:]]  # one entry per layer application
    assert [shape.q_len for shape in encoder_layer_shapes(config, seq_len)] == observed


def test_projection_and_ffn_flops_equal_what_the_linear_layers_compute():
    """Count 2 x multiply-adds of every nn.Linear call in a real forward pass and compare."""
    config = FunnelConfig(**tiny(block_repeats=[1, 2, 1]))
    model = FunnelModel(config)
    counted = []

    def hook(layer, inputs, output):
        tokens = int(np.prod(inputs[0].shape[:-1]))
        counted.append(2 * tokens * layer.weight.shape[0] * layer.weight.shape[1])

    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.Linear):
            layer.register_forward_post_hook(hook)
    batch, seq_len = 3, 19
    model(input_ids=np.full((batch, seq_len), 9))
    cost = funnel_cost(config, seq_len, decoder=True, batch=batch)
    assert sum(counted) == cost.parts["projections"] + cost.parts["ffn"]


def test_funnel_is_cheaper_than_a_bert_with_the_same_layers():
    """The paper's efficiency claim, for every released size, at short and long sequences."""
    for preset in ("small", "medium", "intermediate", "large", "xlarge"):
        config = FunnelConfig.from_preset(preset)
        for seq_len in (128, 512):
            base, bert_for_base, full, bert_for_full = compare_with_bert(config, seq_len)
            assert base.flops < 0.8 * bert_for_base.flops and full.flops < 0.85 * bert_for_full.flops
            assert bert_for_base.name == f"BERT ({bert_layers(config, False)} layers)"


def test_bert_base_size():
    """BERT-base (12 layers, 768 wide) without its pooler: 108.9M parameters."""
    config = FunnelConfig.from_preset("small")
    assert round(bert_cost(config, 128, 12).parameters / 1e6, 1) == 108.9


def test_flops_grow_with_batch_except_the_shared_position_table():
    config = FunnelConfig.from_preset("small-base")
    one, eight = funnel_cost(config, 512, False, 1), funnel_cost(config, 512, False, 8)
    for part in ("projections", "attention", "ffn"):
        assert eight.parts[part] == 8 * one.parts[part]
    assert one.parts["position"] < eight.parts["position"] < 8 * one.parts["position"]


def test_bad_sizes():
    with pytest.raises(ValueError, match="seq_len=0"):
        funnel_cost(FunnelConfig(**tiny()), 0)


def test_cli_flops(capsys):
    from paddlefunnel.cli import main

    assert main(["flops", "--preset", "intermediate-base", "--seq", "512"]) == 0
    out = capsys.readouterr().out
    assert "| FunnelBaseModel | 161.7M |" in out and "| BERT (18 layers) |" in out
    assert main(["flops", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
