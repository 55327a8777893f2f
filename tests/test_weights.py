"""Weights: our format, HuggingFace directories (safetensors, sharded, .bin), .pdparams, and errors."""

import json
import logging
import pickle

import numpy as np
import paddle
import pytest

from model_utils import HEADS, tiny
from paddlefunnel import (
    MODEL_CLASSES,
    FunnelBaseModel,
    FunnelConfig,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelModel,
    WeightsError,
)
from paddlefunnel.checkpoint import load_state_into, read_checkpoint, save_pdparams
from paddlefunnel.modeling.inputs import sample_batch
from paddlefunnel.parity import make_reference_model
from paddlefunnel.registry import PADDLE_WEIGHTS_FILE, SAFE_WEIGHTS_FILE

HEAD_EXTRAS = {"FunnelForSequenceClassification": {"num_labels": 3}, "FunnelForTokenClassification": {"num_labels": 4}}


def _inputs(config, class_name):
    batch = sample_batch(config, class_name)
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def _main_output(out):
    return (out.logits if hasattr(out, "logits") and out.logits is not None
            else getattr(out, "start_logits", None) if hasattr(out, "start_logits") else out.last_hidden_state)


def _ours(model, inputs):
    return _main_output(model(**{k: paddle.to_tensor(v) for k, v in inputs.items()})).numpy()


def _reference(model, inputs):
    import torch

    with torch.no_grad():
        return _main_output(model(**{k: torch.tensor(v) for k, v in inputs.items()})).numpy()


@pytest.mark.parametrize("class_name", HEADS)
def test_save_and_reload_is_exact(tmp_path, class_name):
    paddle.seed(0)
    model = MODEL_CLASSES[class_name](FunnelConfig(**tiny(**HEAD_EXTRAS.get(class_name, {}))))
    model.eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / SAFE_WEIGHTS_FILE).is_file()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [class_name]
    reloaded, info = MODEL_CLASSES[class_name].from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing_keys == [] and info.unexpected_keys == [] and info.layout == "paddle"
    inputs = _inputs(model.config, class_name)
    np.testing.assert_array_equal(_ours(model, inputs), _ours(reloaded, inputs))


@pytest.mark.parametrize("class_name", HEADS)
def test_loads_huggingface_directory_and_exports_back(tmp_path, class_name):
    import transformers

    reference = make_reference_model(class_name, tiny(**HEAD_EXTRAS.get(class_name, {})))
    reference.save_pretrained(tmp_path / "hf")
    ours, info = MODEL_CLASSES[class_name].from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert info.missing_keys == [] and info.unexpected_keys == [] and info.layout == "pt"
    inputs = _inputs(ours.config, class_name)
    expected = _reference(reference, inputs)
    np.testing.assert_allclose(_ours(ours, inputs), expected, atol=1e-5, rtol=0)

    ours.save_pretrained(tmp_path / "back", hf_format=True)
    again = getattr(transformers, class_name).from_pretrained(tmp_path / "back").eval()
    np.testing.assert_allclose(_reference(again, inputs), expected, atol=1e-5, rtol=0)
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key].numpy(), value.numpy(), err_msg=key)


def test_loads_sharded_huggingface_checkpoint(tmp_path):
    reference = make_reference_model("FunnelModel", tiny())
    reference.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    ours = FunnelModel.from_pretrained(tmp_path)
    inputs = _inputs(ours.config, "FunnelModel")
    np.testing.assert_allclose(_ours(ours, inputs), _reference(reference, inputs), atol=1e-5, rtol=0)


def test_loads_pytorch_bin_with_weights_only(tmp_path):
    import torch

    reference = make_reference_model("FunnelBaseModel", tiny())
    reference.config.save_pretrained(tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    ours = FunnelBaseModel.from_pretrained(tmp_path)
    inputs = _inputs(ours.config, "FunnelBaseModel")
    np.testing.assert_allclose(_ours(ours, inputs), _reference(reference, inputs), atol=1e-5, rtol=0)


def test_pdparams_round_trip_and_malicious_pickle_refused(tmp_path):
    paddle.seed(0)
    model = FunnelBaseModel(FunnelConfig(**tiny()))
    model.eval()
    model.config.save_pretrained(tmp_path)
    save_pdparams(model, tmp_path / PADDLE_WEIGHTS_FILE)
    reloaded = FunnelBaseModel.from_pretrained(tmp_path / PADDLE_WEIGHTS_FILE)
    inputs = _inputs(model.config, "FunnelBaseModel")
    np.testing.assert_array_equal(_ours(model, inputs), _ours(reloaded, inputs))

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / PADDLE_WEIGHTS_FILE).write_bytes(pickle.dumps({"weight": Exploit()}))
    with pytest.raises(WeightsError, match="refusing to load posix.system|refusing to load os.system"):
        FunnelBaseModel.from_pretrained(tmp_path / PADDLE_WEIGHTS_FILE)
    assert not (tmp_path / "pwned").exists()


def test_body_checkpoint_into_head_reports_new_weights(tmp_path, caplog):
    reference = make_reference_model("FunnelModel", tiny())
    reference.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="paddlefunnel"):
        model, info = FunnelForQuestionAnswering.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing_keys == ["qa_outputs.bias", "qa_outputs.weight"]
    assert info.unexpected_keys == []
    assert "qa_outputs.weight" in caplog.text and "newly initialised" in caplog.text
    ref_hidden = reference.embeddings.word_embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(model.funnel.embeddings.word_embeddings.weight.numpy(), ref_hidden)


def test_base_checkpoint_into_full_model_reports_decoder(tmp_path):
    make_reference_model("FunnelBaseModel", tiny()).save_pretrained(tmp_path)
    _, info = FunnelModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing_keys and all(k.startswith("decoder.") for k in info.missing_keys)
    expected = {k for k in FunnelModel(FunnelConfig(**tiny())).state_dict() if k.startswith("decoder.")}
    assert set(info.missing_keys) == expected


def test_head_checkpoint_into_body_ignores_head(tmp_path):
    reference = make_reference_model("FunnelForSequenceClassification", tiny())
    reference.save_pretrained(tmp_path)
    body, info = FunnelBaseModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing_keys == []
    assert sorted(info.unexpected_keys) == sorted(k for k in reference.state_dict() if k.startswith("classifier."))
    inputs = _inputs(body.config, "FunnelBaseModel")
    import torch

    with torch.no_grad():
        expected = reference.funnel(**{k: torch.tensor(v) for k, v in inputs.items()}).last_hidden_state.numpy()
    np.testing.assert_allclose(_ours(body, inputs), expected, atol=1e-5, rtol=0)


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    paddle.seed(0)
    FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=3))).save_pretrained(tmp_path)
    with pytest.raises(WeightsError, match=r"classifier.linear_out.weight.*\[16, 3\].*\[16, 5\]"):
        FunnelForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = FunnelForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert {k for k, _, _ in info.mismatched_keys} == {"classifier.linear_out.weight", "classifier.linear_out.bias"}
    assert model.config.num_labels == 5


def test_failed_load_leaves_model_untouched(tmp_path):
    paddle.seed(0)
    FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=3))).save_pretrained(tmp_path)
    paddle.seed(1)
    target = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=5)))
    before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
    with pytest.raises(WeightsError):
        load_state_into(target, read_checkpoint(tmp_path))
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        FunnelModel.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="preset name"):
        FunnelModel.from_pretrained("funnel-transformer/small")
    FunnelConfig(**tiny()).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights found.*model.safetensors"):
        FunnelModel.from_pretrained(tmp_path)
    (tmp_path / SAFE_WEIGHTS_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    with pytest.raises(WeightsError, match="model.safetensors: not a readable safetensors file"):
        FunnelModel.from_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_type"] = "bert"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type is 'bert'"):
        FunnelModel.from_pretrained(tmp_path)
    weights_only = tmp_path / "solo"
    weights_only.mkdir()
    (weights_only / "weights.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        FunnelModel.from_pretrained(weights_only / "weights.safetensors")


def test_saving_leaves_no_temporary_files(tmp_path):
    paddle.seed(0)
    FunnelModel(FunnelConfig(**tiny())).save_pretrained(tmp_path)
    FunnelModel(FunnelConfig(**tiny())).save_pretrained(tmp_path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", SAFE_WEIGHTS_FILE]
