"""`paddlefunnel convert`, `paddlefunnel compare` and the model part of the demo."""

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelBaseModel, FunnelModel
from paddlefunnel.cli import main
from paddlefunnel.parity import make_reference_model


def test_convert_hf_to_paddle_and_back(tmp_path, capsys):
    import torch
    import transformers

    reference = make_reference_model("FunnelBaseModel", tiny())
    reference.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.txt").write_text("<pad>\n<unk>\n")
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd")]) == 0
    assert "FunnelBaseModel (paddle layout)" in capsys.readouterr().out
    assert (tmp_path / "pd" / "vocab.txt").read_text() == "<pad>\n<unk>\n"
    ours = FunnelBaseModel.from_pretrained(tmp_path / "pd")

    assert main(["convert", str(tmp_path / "pd"), str(tmp_path / "hf2"), "--to", "hf"]) == 0
    again = transformers.FunnelBaseModel.from_pretrained(tmp_path / "hf2").eval()
    ids = np.random.default_rng(0).integers(0, 64, (2, 10))
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
        round_trip = again(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
    np.testing.assert_array_equal(round_trip, expected)
    np.testing.assert_allclose(ours(input_ids=paddle.to_tensor(ids)).last_hidden_state.numpy(), expected, atol=1e-5)


def test_convert_refuses_to_overwrite_and_reports_errors(tmp_path, capsys):
    paddle.seed(0)
    from paddlefunnel import FunnelConfig

    FunnelModel(FunnelConfig(**tiny())).save_pretrained(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("x")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "dst")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "dst" / "keep.txt").exists()
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "dst"), "--overwrite"]) == 0
    assert not (tmp_path / "dst" / "keep.txt").exists()
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_compare_default_builds_its_own_model_and_passes(capsys):
    assert main(["compare", "--seq-len", "12"]) == 0
    out = capsys.readouterr().out
    for head in ("FunnelModel (from_pretrained)", "FunnelForPreTraining", "FunnelForMaskedLM",
                 "FunnelForTokenClassification", "FunnelForQuestionAnswering"):
        assert f"| {head} |" in out
    assert "all heads within tolerance" in out


def test_compare_base_checkpoint_covers_sentence_heads(tmp_path, capsys):
    make_reference_model("FunnelBaseModel", tiny()).save_pretrained(tmp_path)
    assert main(["compare", str(tmp_path), "--seq-len", "10"]) == 0
    out = capsys.readouterr().out
    assert "| FunnelForSequenceClassification |" in out and "| FunnelForMultipleChoice |" in out


def test_compare_fails_above_tolerance(tmp_path, capsys, monkeypatch):
    from paddlefunnel import parity

    make_reference_model("FunnelBaseModel", tiny()).save_pretrained(tmp_path)
    original = parity.convert_reference_model

    def perturbed(reference):
        model = original(reference)
        with paddle.no_grad():
            weight = model.funnel.encoder.blocks[0][0].ffn.linear_1.weight
            weight.set_value(weight.numpy() + 1e-3)
        return model

    monkeypatch.setattr(parity, "convert_reference_model", perturbed)
    assert main(["compare", str(tmp_path), "--seq-len", "10"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_compare_without_torch_explains_install(monkeypatch, capsys):
    from paddlefunnel import parity
    from paddlefunnel.errors import MissingDependencyError

    def missing():
        raise MissingDependencyError("comparing with the reference needs torch and transformers: "
                          "pip install 'paddlefunnel[convert]'")

    monkeypatch.setattr(parity, "require_reference", missing)
    assert main(["compare"]) == 2
    assert "pip install 'paddlefunnel[convert]'" in capsys.readouterr().err


def test_demo_vocabulary_and_model_round_trip(tmp_path, capsys):
    import warnings

    from paddlefunnel.cli.demo import DEMO_VOCAB_SIZE, demo_model_round_trip, demo_vocabulary
    from paddlefunnel.tokenizer import FunnelTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the demo's vocabulary size fits its corpus: no warning
        tokenizer = demo_vocabulary(tmp_path)
    assert len(tokenizer) == DEMO_VOCAB_SIZE
    assert FunnelTokenizer.from_pretrained(tmp_path / "tokenizer").tokenize("the capital of kaldor") == [
        "the", "capital", "of", "kaldor"]
    demo_model_round_trip(tmp_path, tokenizer)
    out = capsys.readouterr().out
    assert "reloaded output identical: True" in out
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_demo_deploy_step_on_untrained_models(tmp_path, capsys):
    """The demo's last step, on tiny untrained models saved the way the training pipelines save them."""
    import json

    from paddlefunnel import (FunnelConfig, FunnelForQuestionAnswering, FunnelForSequenceClassification,
                              FunnelForTokenClassification)
    from paddlefunnel.cli.demo import DEMO_MODEL, demo_deploy, demo_vocabulary
    from paddlefunnel.tasks.squad import SquadSettings
    from paddlefunnel.tasks.token_classification import NerSettings

    tokenizer = demo_vocabulary(tmp_path)
    paddle.seed(0)
    config = {**DEMO_MODEL, "vocab_size": len(tokenizer)}
    glue = tmp_path / "glue_run" / "best"
    FunnelForSequenceClassification(FunnelConfig(**config, id2label={0: "entailment", 1: "not_entailment"})
                                    ).save_pretrained(glue)
    tokenizer.save_pretrained(glue)
    (glue / "task.json").write_text(json.dumps({"task": "QNLI", "max_seq_length": 32,
                                                "label_list": ["entailment", "not_entailment"]}))
    squad = tmp_path / "squad_run" / "best"
    FunnelForQuestionAnswering(FunnelConfig(**config)).save_pretrained(squad)
    tokenizer.save_pretrained(squad)
    settings = SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16, version_2_with_negative=True)
    (squad / "squad_settings.json").write_text(json.dumps(settings.__dict__))
    ner = tmp_path / "ner_run" / "best"
    labels = ("O", "I-LOC", "I-PER")
    FunnelForTokenClassification(FunnelConfig(**config, num_labels=len(labels))).save_pretrained(ner)
    tokenizer.save_pretrained(ner)
    (ner / "task.json").write_text(json.dumps(NerSettings(labels, scheme="IOB1", max_seq_length=32).to_json()))
    capsys.readouterr()
    demo_deploy(tmp_path)
    out = capsys.readouterr().out
    assert out.count("-> entailment") + out.count("-> not_entailment") == 2
    assert out.count("(p=") == 5 and "export_glue/, export_squad/, export_ner/" in out
    assert out.count("'Mira Heron visited") == 1 and out.count(" -> ") == 8  # 2 pairs, 3 questions, 3 texts tagged
    assert (tmp_path / "export_squad" / "squad_settings.json").is_file()
