"""Model behaviour beyond parity: initialisation, training, input validation, output containers."""

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import (
    FunnelBaseModel,
    FunnelConfig,
    FunnelForMaskedLM,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelModel,
    preset_names,
)
from paddlefunnel.modeling.activations import ACTIVATIONS
from paddlefunnel.config import HIDDEN_ACTS


def test_activation_table_matches_config_choices():
    assert set(ACTIVATIONS) == set(HIDDEN_ACTS)


def test_initialisation_follows_reference_scheme():
    paddle.seed(0)
    config = FunnelConfig(**tiny(d_model=64, d_inner=256, n_head=4, d_head=16, vocab_size=500, initializer_range=0.1))
    model = FunnelModel(config)
    attention = model.encoder.blocks[0][0].attention
    ffn = model.encoder.blocks[0][0].ffn
    # Linear: N(0, sqrt(1 / (fan_in + fan_out))), bias 0.
    w = ffn.linear_1.weight.numpy()
    assert abs(w.std() - np.sqrt(1.0 / (64 + 256))) < 0.1 * np.sqrt(1.0 / (64 + 256))
    assert abs(w.mean()) < 0.01
    assert np.all(ffn.linear_1.bias.numpy() == 0)
    # Relative-attention parameters: uniform on [0, initializer_range].
    for name in ("r_w_bias", "r_r_bias", "r_kernel", "r_s_bias", "seg_embed"):
        values = getattr(attention, name).numpy()
        assert values.min() >= 0 and values.max() <= 0.1, name
        assert abs(values.mean() - 0.05) < 0.02, name
    # Embeddings N(0, 1); LayerNorm 1 / 0.
    assert abs(model.embeddings.word_embeddings.weight.numpy().std() - 1.0) < 0.05
    assert np.all(attention.layer_norm.weight.numpy() == 1) and np.all(attention.layer_norm.bias.numpy() == 0)


def test_initializer_std_and_padding_row():
    paddle.seed(0)
    config = FunnelConfig(**tiny(d_model=64, vocab_size=500, initializer_std=0.02, pad_token_id=3))
    model = FunnelForSequenceClassification(config)
    embeddings = model.funnel.embeddings.word_embeddings.weight.numpy()
    assert np.all(embeddings[3] == 0)
    assert abs(embeddings[4:].std() - 0.02) < 0.002
    head = model.classifier.linear_hidden.weight.numpy()
    assert abs(head.std() - 0.02) < 0.004


def test_head_model_initialises_body_once_and_head_too():
    paddle.seed(1)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny()))
    assert model.classifier.linear_out.weight.numpy().std() > 0
    assert np.all(model.classifier.linear_out.bias.numpy() == 0)


@pytest.mark.parametrize("name", preset_names())
def test_preset_parameter_counts_match_reference(name):
    import torch
    import transformers

    config = FunnelConfig.from_preset(name)
    base = name.endswith("-base")
    ours_cls, ref_cls = (FunnelBaseModel, transformers.FunnelBaseModel) if base else (FunnelModel, transformers.FunnelModel)
    with paddle.LazyGuard():
        ours = ours_cls(config)
    with torch.device("meta"):
        reference = ref_cls(transformers.FunnelConfig(**config.to_dict()))
    assert ours.num_parameters() == sum(p.numel() for p in reference.parameters())


def test_dropout_is_active_in_train_mode_only():
    paddle.seed(0)
    model = FunnelModel(FunnelConfig(**tiny(hidden_dropout=0.3, attention_dropout=0.3)))
    ids = paddle.to_tensor(np.random.default_rng(0).integers(0, 64, (2, 9)))
    model.train()
    a, b = model(input_ids=ids).last_hidden_state.numpy(), model(input_ids=ids).last_hidden_state.numpy()
    assert not np.allclose(a, b)
    model.eval()
    c, d = model(input_ids=ids).last_hidden_state.numpy(), model(input_ids=ids).last_hidden_state.numpy()
    np.testing.assert_array_equal(c, d)


def test_training_with_dropout_reduces_loss():
    paddle.seed(0)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=2)))
    model.train()
    rng = np.random.default_rng(0)
    ids = paddle.to_tensor(rng.integers(0, 64, (8, 12)))
    labels = paddle.to_tensor(rng.integers(0, 2, 8))
    optimizer = paddle.optimizer.AdamW(learning_rate=3e-3, parameters=model.parameters())
    losses = []
    for _ in range(40):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_bad_inputs_raise_clear_errors():
    model = FunnelModel(FunnelConfig(**tiny()))
    ids = np.zeros((2, 5), dtype=np.int64)
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(input_ids=ids, inputs_embeds=np.zeros((2, 5, 16), np.float32))
    with pytest.raises(ValueError, match="pass input_ids or inputs_embeds"):
        model()
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(input_ids=ids, attention_mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\[batch, seq_len\]"):
        model(input_ids=np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="sequence length is 0"):
        model(input_ids=np.zeros((2, 0), dtype=np.int64))
    with pytest.raises(ValueError, match="num_labels == 2"):
        FunnelForQuestionAnswering(FunnelConfig(**tiny(num_labels=3)))
    with pytest.raises(TypeError, match="FunnelConfig"):
        FunnelModel({"d_model": 16})


def test_tuple_outputs_and_output_container():
    paddle.seed(0)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=3)))
    model.eval()
    ids = np.random.default_rng(1).integers(0, 64, (2, 7))
    out = model(input_ids=ids, labels=np.array([0, 2]), output_hidden_states=True)
    as_tuple = model(input_ids=ids, labels=np.array([0, 2]), output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    np.testing.assert_array_equal(as_tuple[1].numpy(), out.logits.numpy())
    assert out["logits"] is out.logits and out[0] is out.loss
    assert list(out.keys()) == ["loss", "logits", "hidden_states"]
    assert out.attentions is None


def test_tied_lm_head_shares_the_embedding_matrix():
    paddle.seed(0)
    model = FunnelForMaskedLM(FunnelConfig(**tiny()))
    assert "lm_head.weight" not in model.state_dict()
    assert model.lm_head.projection() is model.funnel.embeddings.word_embeddings.weight
    untied = FunnelForMaskedLM(FunnelConfig(**tiny(tie_word_embeddings=False)))
    assert list(untied.state_dict()["lm_head.weight"].shape) == [64, 16]


def test_right_padding_changes_real_token_outputs_like_the_reference():
    """With truncate_seq, pooling windows shift when padding is added: padding is not neutral. Users must
    compare padded inputs with padded inputs; the reference behaves identically."""
    import torch

    from paddlefunnel.parity import convert_reference_model, make_reference_model

    reference = make_reference_model("FunnelBaseModel", tiny())
    ours = convert_reference_model(reference)
    ids = np.random.default_rng(0).integers(1, 64, (1, 9))
    padded = np.concatenate([ids, np.zeros((1, 3), dtype=ids.dtype)], axis=1)
    mask = (padded != 0).astype(np.int64)
    short = ours(input_ids=ids).last_hidden_state.numpy()
    long = ours(input_ids=padded, attention_mask=mask).last_hidden_state.numpy()
    with torch.no_grad():
        ref_short = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
        ref_long = reference(input_ids=torch.tensor(padded), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    n = min(short.shape[1], long.shape[1])
    assert np.abs(short[:, :n] - long[:, :n]).max() > 1e-3
    np.testing.assert_allclose(long, ref_long, atol=1e-5, rtol=0)
    np.testing.assert_allclose(short, ref_short, atol=1e-5, rtol=0)


def test_qa_loss_accepts_2d_positions_and_ignores_out_of_range():
    """The reference crashes on [batch, 1] positions (a typo in its squeeze); ours treats them like [batch]."""
    paddle.seed(0)
    model = FunnelForQuestionAnswering(FunnelConfig(**tiny()))
    model.eval()
    ids = np.random.default_rng(0).integers(0, 64, (3, 9))
    start, end = np.array([1, 4, 30]), np.array([2, 6, 31])  # the third is beyond the sequence: ignored
    flat = model(input_ids=ids, start_positions=start, end_positions=end).loss
    column = model(input_ids=ids, start_positions=start[:, None], end_positions=end[:, None]).loss
    first_two = model(input_ids=ids[:2], start_positions=start[:2], end_positions=end[:2]).loss
    assert float(flat) == pytest.approx(float(column))
    assert float(flat) == pytest.approx(float(first_two), rel=1e-5)
