"""Tiny configurations shared by the model, weights and CLI tests, and the parity grid (every configuration
option the port must honour; benchmarks/parity_report.py measures the README's table on it)."""

from typing import Any

from paddlefunnel.registry import ARCHITECTURES

# Every configuration option the port must honour, as overrides of a tiny test configuration.
TINY_CONFIG = dict(vocab_size=64, d_model=16, n_head=2, d_head=6, d_inner=24, block_sizes=[2, 1, 2],
                   num_decoder_layers=1)
PARITY_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "factorized": {"attention_type": "factorized"},
    "no_separate_cls": {"separate_cls": False},
    "no_truncate_seq": {"truncate_seq": False},
    "no_pool_q_only": {"pool_q_only": False},
    "max_pooling": {"pooling_type": "max"},
    "block_repeats": {"block_repeats": [1, 2, 2]},
    "block_repeats_first_block": {"block_repeats": [2, 1, 1]},
    "no_decoder_layers": {"num_decoder_layers": 0},
    "three_decoder_layers": {"num_decoder_layers": 3},
    "d_head_independent": {"n_head": 3, "d_head": 5},
    "factorized_everything_off": {"attention_type": "factorized", "separate_cls": False, "truncate_seq": False,
                                  "pool_q_only": False, "pooling_type": "max"},
    "factorized_no_pool_q_only": {"attention_type": "factorized", "pool_q_only": False},
    "four_blocks": {"block_sizes": [1, 2, 1, 1]},
    "gelu_erf": {"hidden_act": "gelu"},
    "relu": {"hidden_act": "relu"},
    "pad_token_id": {"pad_token_id": 0},
}
HEAD_LABELS = {"FunnelForSequenceClassification": {"num_labels": 3}, "FunnelForTokenClassification": {"num_labels": 5}}
ALL_HEADS = tuple(ARCHITECTURES)

TINY = TINY_CONFIG

BODIES = ("FunnelModel", "FunnelBaseModel")
HEADS = ALL_HEADS


def tiny(**overrides):
    return {**TINY, **overrides}
