"""Predictor: raw text -> predictions through Paddle Inference, equal to the dynamic-graph pipeline."""

from __future__ import annotations

import json
import logging

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelConfig, FunnelForQuestionAnswering, FunnelForSequenceClassification, FunnelTokenizer
from paddlefunnel.data import SquadExample, demo_corpus
from paddlefunnel.deploy import Predictor, export_model, predict_jsonl
from paddlefunnel.errors import DataFormatError
from paddlefunnel.tasks.squad import SquadSettings, build_features, postprocess_predictions

LABELS = ["entailment", "neutral", "contradiction"]
QUESTIONS = ["what is the capital of kaldor ?", "who wrote the book ?", "what is the national animal of cressia ?"]
CONTEXTS = ["the capital of kaldor is druma . it lies on a river . " * 3, "the book was written by a poet .",
            "marten is the national animal of cressia ."]


@pytest.fixture(scope="module")
def tokenizer():
    return FunnelTokenizer.train_from_iterator(demo_corpus(), 200, show_progress=False)


def _save(model, tokenizer, directory, settings_file: str, settings: dict):
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / settings_file).write_text(json.dumps(settings), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tokenizer):
    tmp = tmp_path_factory.mktemp("cls")
    paddle.seed(1)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(vocab_size=len(tokenizer), num_labels=3)))
    model.eval()
    directory = _save(model, tokenizer, tmp / "model", "task.json",
                      {"task": "demo", "max_seq_length": 20, "label_list": LABELS})
    export_model(directory, tmp / "export", quiet=True)
    return model, tmp / "export"


@pytest.fixture(scope="module")
def reader(tmp_path_factory, tokenizer):
    tmp = tmp_path_factory.mktemp("qa")
    paddle.seed(2)
    model = FunnelForQuestionAnswering(FunnelConfig(**tiny(vocab_size=len(tokenizer), num_labels=2)))
    model.eval()
    settings = {"max_seq_length": 24, "doc_stride": 6, "max_query_length": 10, "version_2_with_negative": True,
                "n_best_size": 5}
    directory = _save(model, tokenizer, tmp / "model", "squad_settings.json", settings)
    export_model(directory, tmp / "export", quiet=True)
    return model, tmp / "export", SquadSettings(**settings)


def test_classification_equals_the_dynamic_model_on_the_same_encoding(classifier, tokenizer):
    model, export = classifier
    texts, pairs = ["what is the capital of kaldor ?", "druma"], ["the capital of kaldor is druma .", "a river"]
    results = Predictor(export, device="cpu").predict(texts, pairs)
    batch = tokenizer(texts, pairs, truncation="longest_first", max_length=20, padding="max_length",
                      return_tensors="np", verbose=False)
    with paddle.no_grad():
        logits = model(**{k: paddle.to_tensor(batch[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    expected = paddle.nn.functional.softmax(logits, axis=-1).numpy()
    for result, row in zip(results, expected):
        assert list(result["probabilities"]) == LABELS
        np.testing.assert_allclose(list(result["probabilities"].values()), row, atol=1e-5)
        assert result["label"] == LABELS[int(row.argmax())]


def test_predictions_do_not_depend_on_batching(classifier):
    _, export = classifier
    texts = [f"what is the capital of kaldor {'? ' * i}" for i in range(5)]
    together = Predictor(export, device="cpu", batch_size=2).predict(texts)
    alone = [Predictor(export, device="cpu").predict([t])[0] for t in texts[:2]]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6)


def test_regression_models_give_a_score(tmp_path, tokenizer):
    paddle.seed(3)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(vocab_size=len(tokenizer), num_labels=1)))
    directory = _save(model, tokenizer, tmp_path / "model", "task.json", {"max_seq_length": 16, "label_list": None})
    export_model(directory, tmp_path / "export", quiet=True)
    (result,) = Predictor(tmp_path / "export", device="cpu").predict("a river")
    assert set(result) == {"score"} and np.isfinite(result["score"])


def test_question_answering_equals_squad_post_processing_of_the_dynamic_model(reader, tokenizer):
    model, export, settings = reader
    results = Predictor(export, device="cpu").predict(QUESTIONS, CONTEXTS)
    examples = [SquadExample(str(i), q, c, []) for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
    features = build_features(examples, tokenizer, settings)
    assert len(features) > len(examples)  # the long context is split into several windows
    with paddle.no_grad():
        out = model(**{k: paddle.to_tensor(v) for k, v in features.arrays.items()})
    predictions, nbest, _ = postprocess_predictions(examples, features, out.start_logits.numpy(),
                                                    out.end_logits.numpy(), settings)
    for example, result in zip(examples, results):
        assert result["answer"] == predictions[example.qas_id]
        assert result["answer"] == "" or result["answer"] in example.context
        expected = [c["probability"] for c in nbest[example.qas_id]][: len(result["nbest"])]
        np.testing.assert_allclose([c["probability"] for c in result["nbest"]], expected, atol=1e-4)
        assert 0.0 <= result["score"] <= 1.0


def test_question_answering_needs_a_context(reader):
    _, export, _ = reader
    with pytest.raises(ValueError, match="needs a context for every question"):
        Predictor(export, device="cpu").predict(["what ?"])


def test_predict_on_a_model_without_the_needed_head(tmp_path):
    from paddlefunnel import FunnelBaseModel

    paddle.seed(0)
    FunnelBaseModel(FunnelConfig(**tiny())).save_pretrained(tmp_path / "model")
    export_model(tmp_path / "model", tmp_path / "export", quiet=True)
    predictor = Predictor(tmp_path / "export", device="cpu")
    with pytest.raises(ValueError, match="FunnelBaseModel, which has no classification or question answering head"):
        predictor.predict(["hello"])
    assert predictor.run(np.full((1, 8), 9))["last_hidden_state"].shape == (1, 2, 16)  # raw outputs still work


def test_export_without_tokenizer_cannot_take_text(tmp_path):
    paddle.seed(0)
    FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=2))).save_pretrained(tmp_path / "model")
    export_model(tmp_path / "model", tmp_path / "export", quiet=True)
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        Predictor(tmp_path / "export", device="cpu").predict(["hello"])


def test_bad_arguments(classifier, tmp_path):
    _, export = classifier
    with pytest.raises(ValueError, match="device='tpu'"):
        Predictor(export, device="tpu")
    with pytest.raises(FileNotFoundError, match="not a paddlefunnel export"):
        Predictor(tmp_path)
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        Predictor(export, device="cpu").predict(["a", "b"], ["c"])


def test_jsonl_bad_lines_are_reported_and_the_rest_processed(classifier, tmp_path, caplog):
    _, export = classifier
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "druma", "text_pair": "a river"}\n'
                      "not json\n"
                      "\n"
                      '{"txt": "x"}\n'
                      '["a list"]\n'
                      '{"text": "what is the capital of kaldor ?"}\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="paddlefunnel"):
        result = predict_jsonl(Predictor(export, device="cpu"), source, tmp_path / "out.jsonl", progress=False)
    assert result.written == 2 and [e.line for e in result.errors] == [2, 3, 4, 5]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, None, None, None, None]  # output line N = input line N
    assert rows[1] == {"line": 2, "error": "not valid JSON (Expecting value)"}
    assert rows[2] == {"line": 3, "error": "blank line: expected a JSON object"}
    assert "missing field 'text'" in rows[3]["error"] and "expected a JSON object" in rows[4]["error"]
    assert rows[5]["label"] in LABELS
    err = caplog.text
    assert f"{source}:2: error: not valid JSON" in err and f"{source}:4: error: missing field 'text'" in err


def test_cli_predict_text_and_input(classifier, reader, tmp_path, capsys):
    from paddlefunnel.cli import main

    _, export = classifier
    assert main(["predict", "--model", str(export), "--text", "druma", "--text-pair", "a river"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in LABELS
    _, qa_export, _ = reader
    assert main(["predict", "--model", str(qa_export), "--text", QUESTIONS[0], "--text-pair", CONTEXTS[0]]) == 0
    assert "answer" in json.loads(capsys.readouterr().out)
    source = tmp_path / "in.jsonl"
    source.write_text('{"question": "who wrote the book ?", "context": "the book was written by a poet ."}\n{oops\n')
    assert main(["predict", "--model", str(qa_export), "--input", str(source), "--output", str(tmp_path / "o")]) == 1
    lines = (tmp_path / "o").read_text().splitlines()
    assert "answer" in json.loads(lines[0]) and json.loads(lines[1])["line"] == 2
    assert "1 bad input lines (first: line 2)" in capsys.readouterr().err
    assert main(["predict", "--model", str(export)]) == 2
    assert "one of --text / --input" in capsys.readouterr().err
    bf16_ok = paddle.base.core.supports_bfloat16()
    assert main(["predict", "--model", str(export), "--text", "druma", "--precision", "bf16"]) == (0 if bf16_ok else 2)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["label"] in LABELS if bf16_ok else "AVX-512" in captured.err


def _sample_ids(config, batch: int = 4, seq_len: int = 20) -> np.ndarray:
    return np.random.default_rng(0).integers(7, config.vocab_size, (batch, seq_len)).astype(np.int64)


def test_bf16_precision_runs_close_to_fp32(classifier):
    model, export = classifier
    ids = _sample_ids(model.config)
    if not paddle.base.core.supports_bfloat16():  # no AVX-512: the option must say so, not fail later
        with pytest.raises(ValueError, match="AVX-512"):
            Predictor(export, device="cpu", precision="bf16")
        return
    fp32 = Predictor(export, device="cpu").run(ids)["logits"]
    bf16 = Predictor(export, device="cpu", precision="bf16").run(ids)["logits"]
    difference = float(np.abs(bf16 - fp32).max())
    # bfloat16 keeps 8 significant bits: visibly different from fp32 (so bf16 really ran), but close.
    assert 0 < difference <= 0.05 * max(1.0, float(np.abs(fp32).max()))


def test_precision_is_checked(classifier):
    _, export = classifier
    with pytest.raises(ValueError, match="expected one of fp32, bf16"):
        Predictor(export, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="CPU"):
        Predictor(export, device="gpu", precision="bf16")


def test_jsonl_output_lines_align_with_input_lines_blank_and_empty_context(reader, tmp_path, caplog, capsys):
    """Issue 13: a blank line is an error object at its own place (not dropped), and an empty QA context is an
    error counted as bad and reported at its own line, not at its index in the batch."""
    from paddlefunnel.cli import main

    _, qa_export, _ = reader
    good = [json.dumps({"id": f"q{i}", "question": q, "context": c}) for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
    lines = [good[0], "", good[1], json.dumps({"id": "empty", "question": QUESTIONS[2], "context": ""}), "   ",
             json.dumps({"question": QUESTIONS[0], "context": "  "}), good[2]]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="paddlefunnel"):
        result = predict_jsonl(Predictor(qa_export, device="cpu"), source, tmp_path / "out.jsonl", progress=False,
                               chunk_size=3)  # chunks split the bad lines: line numbers must not be chunk indices
    assert [e.line for e in result.errors] == [2, 4, 5, 6] and result.written == 3
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == len(lines)
    assert [r.get("id") for r in rows] == ["q0", None, "q1", None, None, None, "q2"]
    assert rows[1]["line"] == 2 and "blank line" in rows[1]["error"]
    assert rows[3] == {"line": 4, "error": "empty context: there is nothing to find the answer in"}
    assert rows[4]["line"] == 5 and rows[5]["line"] == 6 and "empty context" in rows[5]["error"]
    assert all("answer" in rows[i] for i in (0, 2, 6))
    assert f"{source}:4: error: empty context" in caplog.text and f"{source}:6: error: empty context" in caplog.text
    assert main(["predict", "--model", str(qa_export), "--input", str(source), "--output", str(tmp_path / "o")]) == 1
    assert "4 bad input lines (first: line 2)" in capsys.readouterr().err
    assert len((tmp_path / "o").read_text().splitlines()) == len(lines)
    # --text with an empty context: the error object, and a failing exit status.
    assert main(["predict", "--model", str(qa_export), "--text", QUESTIONS[0], "--text-pair", ""]) == 1
    assert "empty context" in json.loads(capsys.readouterr().out)["error"]


def test_jsonl_that_is_not_utf8_names_its_line(classifier, tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "b"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=r"queries.jsonl, line 3: not UTF-8 text \(byte 13 of the line"):
        predict_jsonl(Predictor(classifier[1]), path, progress=False)
