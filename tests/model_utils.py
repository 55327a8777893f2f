"""Tiny configurations shared by the model, weights and CLI tests."""

TINY = dict(vocab_size=64, d_model=16, n_head=2, d_head=6, d_inner=24, block_sizes=[2, 1, 2], num_decoder_layers=1)

BODIES = ("FunnelModel", "FunnelBaseModel")
HEADS = (
    "FunnelModel",
    "FunnelBaseModel",
    "FunnelForPreTraining",
    "FunnelForMaskedLM",
    "FunnelForSequenceClassification",
    "FunnelForMultipleChoice",
    "FunnelForTokenClassification",
    "FunnelForQuestionAnswering",
)


def tiny(**overrides):
    return {**TINY, **overrides}
