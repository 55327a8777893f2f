"""Tiny configurations shared by the model, weights and CLI tests."""

from paddlefunnel.parity import ALL_HEADS, TINY_CONFIG

TINY = TINY_CONFIG

BODIES = ("FunnelModel", "FunnelBaseModel")
HEADS = ALL_HEADS


def tiny(**overrides):
    return {**TINY, **overrides}
