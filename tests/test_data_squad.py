"""SQuAD JSON reader: structure errors, span checks with reports, and the evaluation loaders."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from paddlefunnel.data.squad import load_squad_dataset_for_eval, read_na_probs, read_squad, read_squad_predictions
from paddlefunnel.metrics.squad import squad_evaluate

CONTEXT = "Paris is the capital of France. Berlin is in Germany."
# "Paris" starts at 0; "France" at 24; "Berlin" at 32.


def doc(*qas: dict, context: str = CONTEXT, version: str = "v2.0") -> dict:
    return {"version": version, "data": [{"title": "Cities", "paragraphs": [{"context": context,
                                                                              "qas": list(qas)}]}]}


def q(qid: str, answers: list[tuple[str, int]], impossible: bool | None = None, question: str = "Where?") -> dict:
    item = {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}
    if impossible is not None:
        item["is_impossible"] = impossible
    return item


def save(tmp_path: Path, document: dict, name: str = "squad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_reads_v2_with_impossible_questions(tmp_path: Path) -> None:
    document = doc(q("a", [("Paris", 0)], False), q("b", [], True))
    document["data"][0]["paragraphs"][0]["qas"][1]["plausible_answers"] = [{"text": "Berlin", "answer_start": 32}]
    result = read_squad(save(tmp_path, document), training=True)
    assert result.version == "2.0" and not result.report
    a, b = result.examples
    assert (a.qas_id, a.question, a.context, a.title, a.is_impossible) == ("a", "Where?", CONTEXT, "Cities", False)
    assert a.answers == [{"text": "Paris", "answer_start": 0}]
    assert b.is_impossible and b.answers == []  # plausible answers are not answers


def test_reads_v1_with_several_answers(tmp_path: Path) -> None:
    result = read_squad(save(tmp_path, doc(q("a", [("France", 24), ("France.", 24)]), version="1.1")))
    assert result.version == "1.1"
    assert [ans["text"] for ans in result.examples[0].answers] == ["France", "France."]


def test_bad_spans_are_reported_and_skipped_for_training(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    document = doc(
        q("ok", [("Paris", 0)], False),
        q("far", [("Paris", 500)], False),  # answer_start out of range
        q("shifted", [("Paris", 1)], False),  # text does not match the context at 1
        q("half", [("Berlin", 32), ("Germany", 0)], False),  # one good answer, one bad
    )
    path = save(tmp_path, document)
    with caplog.at_level(logging.WARNING, logger="paddlefunnel.data"):
        train = read_squad(path, training=True)
    assert [ex.qas_id for ex in train.examples] == ["ok", "half"]
    assert train.examples[1].answers == [{"text": "Berlin", "answer_start": 32}]
    assert [(p.qas_id, p.reason) for p in train.report.skipped] == [("far", "no answer matches the context"),
                                                                    ("shifted", "no answer matches the context")]
    reasons = {p.qas_id: p.reason for p in train.report.bad_answers}
    assert "answer_start 500" in reasons["far"] and "outside the 53-character context" in reasons["far"]
    assert "'Paris' does not match the context at 1 ('aris ')" in reasons["shifted"]
    assert "answers[1]" in reasons["half"]
    assert "skipped 2 of 4 questions" in caplog.text and "far" in caplog.text
    # for evaluation every question and answer is kept (the scoring uses only texts), but still reported
    evaluation = read_squad(path, training=False)
    assert len(evaluation.examples) == 4 and len(evaluation.examples[3].answers) == 2
    assert len(evaluation.report.bad_answers) == 3 and evaluation.report.skipped == []


def test_empty_question_or_context_is_skipped_with_its_id(tmp_path: Path) -> None:
    document = doc(q("blank", [], True, question="  "), q("fine", [], True))
    document["data"].append({"title": "x", "paragraphs": [{"context": " ", "qas": [q("nocontext", [], True)]}]})
    result = read_squad(save(tmp_path, document))
    assert [ex.qas_id for ex in result.examples] == ["fine"]
    assert [(p.qas_id, p.reason) for p in result.report.skipped] == [("blank", "empty question"),
                                                                     ("nocontext", "empty context")]
    assert "skipped 2 of 3 questions (first: blank: empty question" in result.report.summary()


def test_answerless_question_without_is_impossible_is_skipped_for_training(tmp_path: Path) -> None:
    result = read_squad(save(tmp_path, doc(q("a", [("Paris", 0)]), q("b", []))), training=True)
    assert [ex.qas_id for ex in result.examples] == ["a"]
    assert result.report.skipped[0].reason == "no answers and not is_impossible"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("question"), r"question 'a': missing field 'question'"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].pop("answer_start"),
         r"question 'a' answers\[0\]: missing field 'answer_start'"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="0"),
         r"question 'a' answers\[0\]: field 'answer_start' is str, expected int"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("id"), r"data\[0\].paragraphs\[0\].qas\[0\]: missing "
                                                                     r"field 'id'"),
        (lambda d: d["data"][0]["paragraphs"][0].pop("context"), r"data\[0\].paragraphs\[0\]: missing field "
                                                                 r"'context'"),
        (lambda d: d["data"][0].pop("paragraphs"), r"data\[0\]: missing field 'paragraphs'"),
        (lambda d: d.pop("data"), r"the top level: missing field 'data'"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"].append(q("a", [], True)), r"question 'a'.*the id occurs twice"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(is_impossible=True),
         r"question 'a': is_impossible is true but 'answers' is not empty"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(is_impossible="no"),
         r"question 'a': field 'is_impossible' is str, expected bool"),
    ],
)
def test_structure_errors_name_the_question_and_field(tmp_path: Path, mutate, message: str) -> None:
    document = doc(q("a", [("Paris", 0)], False))
    mutate(document)
    path = save(tmp_path, document)
    with pytest.raises(ValueError, match=message) as err:
        read_squad(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match=message):
        load_squad_dataset_for_eval(path)


def test_malformed_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"title": "x",}\n]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.json, line 2: invalid JSON at column 17"):
        read_squad(path)
    with pytest.raises(FileNotFoundError, match="SQuAD file .*absent.json does not exist"):
        read_squad(tmp_path / "absent.json")
    with pytest.raises(ValueError, match="holds no questions"):
        read_squad(save(tmp_path, {"data": []}))


def test_eval_loader_feeds_squad_evaluate(tmp_path: Path) -> None:
    document = doc(q("a", [("Paris", 0)], False), q("b", [], True))
    data = load_squad_dataset_for_eval(save(tmp_path, document))
    assert data == copy.deepcopy(document["data"])  # unchanged
    preds_path = save(tmp_path, {"a": "paris", "b": ""}, "pred.json")
    probs_path = save(tmp_path, {"a": 0.2, "b": 0.9}, "na.json")
    result = squad_evaluate(data, read_squad_predictions(preds_path), read_na_probs(probs_path))
    assert result["exact"] == 100.0 and result["best_exact_thresh"] == pytest.approx(0.2)


def test_prediction_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pred.json: the prediction for 'a' is list"):
        read_squad_predictions(save(tmp_path, {"a": ["x"]}, "pred.json"))
    with pytest.raises(ValueError, match=r"pred.json: the top level is list, expected an object"):
        read_squad_predictions(save(tmp_path, ["x"], "pred.json"))
    with pytest.raises(ValueError, match=r"na.json: the na_prob for 'a' is 'high', expected a number"):
        read_na_probs(save(tmp_path, {"a": "high"}, "na.json"))
