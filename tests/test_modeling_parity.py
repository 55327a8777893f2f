"""Forward and backward parity with transformers' Funnel for every option and every head."""

import numpy as np
import pytest

from model_utils import BODIES, HEAD_LABELS, HEADS, PARITY_OPTIONS, tiny
from paddlefunnel.parity import (
    BACKWARD_TOLERANCE,
    FORWARD_TOLERANCE,
    convert_reference_model,
    make_reference_model,
    run_case,
)

OPTIONS = PARITY_OPTIONS
HEAD_EXTRAS = HEAD_LABELS


def assert_parity(report):
    assert report.max_forward <= FORWARD_TOLERANCE, report.worst()
    assert report.max_backward <= BACKWARD_TOLERANCE, report.worst()
    # Everything that could be compared was: outputs, hidden states, attentions, every gradient.
    assert any(k.startswith("hidden_states.") for k in report.forward)
    assert any(k.startswith("attentions.") for k in report.forward)
    assert "grad.inputs_embeds" in report.backward


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("body", BODIES)
def test_every_option_matches_reference(option, body):
    assert_parity(run_case(body, tiny(**OPTIONS[option])))


@pytest.mark.parametrize("seq_len", [16, 17, 24])
@pytest.mark.parametrize("option", ["default", "factorized", "no_separate_cls", "no_truncate_seq"])
def test_sequence_lengths_match_reference(option, seq_len):
    assert_parity(run_case("FunnelModel", tiny(**OPTIONS[option]), seq_len=seq_len, batch_size=2))


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("option", ["default", "factorized"])
def test_every_head_matches_reference_with_loss(head, option):
    report = run_case(head, tiny(**OPTIONS[option], **HEAD_EXTRAS.get(head, {})))
    assert_parity(report)
    if head not in BODIES:
        assert "loss" in report.forward and report.forward["loss"] <= FORWARD_TOLERANCE


@pytest.mark.parametrize(
    "extra",
    [{"num_labels": 1}, {"num_labels": 4, "problem_type": "multi_label_classification"},
     {"num_labels": 2, "problem_type": "regression"}],
    ids=["regression", "multi_label", "regression_two_outputs"],
)
def test_sequence_classification_losses_match_reference(extra):
    report = run_case("FunnelForSequenceClassification", tiny(**extra))
    assert_parity(report)
    assert report.forward["loss"] <= FORWARD_TOLERANCE


def test_untied_lm_head_matches_reference():
    assert_parity(run_case("FunnelForMaskedLM", tiny(tie_word_embeddings=False)))


def test_defaults_without_mask_and_token_types_match_reference():
    import paddle
    import torch

    reference = make_reference_model("FunnelModel", tiny())
    ours = convert_reference_model(reference)
    ids = np.random.default_rng(3).integers(0, 64, (2, 11))
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
    got = ours(input_ids=paddle.to_tensor(ids)).last_hidden_state.numpy()
    np.testing.assert_allclose(got, expected, atol=FORWARD_TOLERANCE, rtol=0)


@pytest.mark.parametrize("separate_cls", [True, False])
def test_short_sequences_match_reference_where_it_runs(separate_cls):
    """Many blocks on short inputs: pooling stops early. Where the reference runs we match it; where it
    fails (its position tables assume every block pooled) we still return finite, full-length outputs."""
    import paddle
    import torch

    config = tiny(block_sizes=[1, 1, 1, 1], separate_cls=separate_cls)
    reference = make_reference_model("FunnelModel", config)
    ours = convert_reference_model(reference)
    compared = 0
    for seq_len in range(1, 14):
        ids = np.random.default_rng(seq_len).integers(1, 64, (2, seq_len))
        got = ours(input_ids=paddle.to_tensor(ids)).last_hidden_state.numpy()
        assert got.shape == (2, seq_len, 16) and np.isfinite(got).all()
        try:
            with torch.no_grad():
                expected = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
        except RuntimeError:
            continue
        np.testing.assert_allclose(got, expected, atol=FORWARD_TOLERANCE, rtol=0)
        compared += 1
    assert compared >= 5
