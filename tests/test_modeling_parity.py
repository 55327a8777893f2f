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


CLS_ONLY_HEADS = ("FunnelForSequenceClassification", "FunnelForMultipleChoice")
CLS_ONLY_OPTIONS = ("default", "factorized", "no_separate_cls", "no_pool_q_only", "block_repeats",
                    "four_blocks", "pad_token_id")


@pytest.mark.parametrize("option", CLS_ONLY_OPTIONS)
@pytest.mark.parametrize("head", CLS_ONLY_HEADS)
def test_sentence_heads_without_per_position_outputs_match_reference(head, option):
    """Without hidden states or attentions the sentence-level heads run their last layer for <cls> alone: logits,
    loss and every parameter gradient still equal the reference's full computation."""
    config = tiny(**OPTIONS[option], **HEAD_EXTRAS.get(head, {}))
    report = run_case(head, config, per_position_outputs=False)
    assert report.max_forward <= FORWARD_TOLERANCE, report.worst()
    assert report.max_backward <= BACKWARD_TOLERANCE, report.worst()
    assert {"logits", "loss"} <= set(report.forward)
    assert not any(k.startswith(("hidden_states.", "attentions.")) for k in report.forward)
    last_layer = f"funnel.encoder.blocks.{len(config['block_sizes']) - 1}.{config['block_sizes'][-1] - 1}"
    assert f"grad.{last_layer}.ffn.linear_1.weight" in report.backward


@pytest.mark.parametrize("option", ["default", "no_separate_cls", "block_repeats", "no_pool_q_only"])
def test_first_token_only_returns_the_first_position(option):
    """FunnelBaseModel(first_token_only=True): [B, 1, D], equal to row 0 of the full output; the last layer's query
    side runs on one position exactly when separate_cls allows it."""
    import paddle

    from paddlefunnel.modeling.attention import FunnelRelMultiheadAttention

    reference = make_reference_model("FunnelBaseModel", tiny(**OPTIONS[option]))
    ours = convert_reference_model(reference)
    ours.eval()
    ids = paddle.to_tensor(np.random.default_rng(5).integers(1, 64, (3, 19)))
    full = ours(ids).last_hidden_state.numpy()
    query_lengths = []
    hook = ours.encoder.blocks[-1][-1].attention.register_forward_post_hook(
        lambda layer, inputs, output: query_lengths.append(inputs[0].shape[1]))
    assert isinstance(ours.encoder.blocks[-1][-1].attention, FunnelRelMultiheadAttention)
    first = ours(ids, first_token_only=True).last_hidden_state.numpy()
    hook.remove()
    assert first.shape == (3, 1, full.shape[-1])
    np.testing.assert_allclose(first[:, 0], full[:, 0], atol=FORWARD_TOLERANCE, rtol=0)
    assert query_lengths[-1] == (1 if OPTIONS[option].get("separate_cls", True) else full.shape[1])
    with_states = ours(ids, first_token_only=True, output_hidden_states=True)
    assert with_states.last_hidden_state.shape == [3, 1, full.shape[-1]]
    assert with_states.hidden_states[-1].shape == list(full.shape)


@pytest.mark.parametrize("option", ["default", "factorized"])
def test_cls_only_last_layer_leaves_no_parameter_without_gradient(option):
    """Parameters the <cls>-only layer does not need still get (zero) gradients, as in the full computation:
    DataParallel's all-reduce waits for every parameter, and AdamW must treat them alike."""
    import paddle

    from paddlefunnel import FunnelConfig, FunnelForSequenceClassification

    paddle.seed(0)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(**OPTIONS[option], num_labels=3)))
    ids = paddle.to_tensor(np.random.default_rng(1).integers(1, 64, (2, 13)))
    model(ids, labels=paddle.to_tensor([0, 2])).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    last = model.funnel.encoder.blocks[-1][-1].attention
    assert float(paddle.abs(last.r_kernel.grad).max()) == 0.0


def test_cls_query_needs_separate_cls():
    import paddle

    from paddlefunnel import FunnelConfig, FunnelBaseModel

    model = FunnelBaseModel(FunnelConfig(**tiny(separate_cls=False)))
    attention = model.encoder.blocks[-1][-1].attention
    hidden = paddle.randn([2, 5, 16])
    inputs = model.encoder.attention_structure.init_inputs(hidden, None, None)
    with pytest.raises(ValueError, match="separate_cls"):
        attention(hidden[:, :1], hidden, hidden, inputs, cls_query=True)
