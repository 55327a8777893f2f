"""SQuAD scoring: hand-worked cases for the official v1.1 / v2.0 rules, the threshold search, errors, the CLI."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paddlefunnel.cli import main
from paddlefunnel.metrics.squad import (
    detect_version,
    exact_score,
    f1_score_v1,
    f1_score_v2,
    normalize_answer,
    squad_evaluate,
)


def qa(qid: str, answers: list[str], impossible: bool | None = None) -> dict:
    item = {"id": qid, "question": f"question {qid}?", "answers": [{"text": a, "answer_start": 0} for a in answers]}
    if impossible is not None:
        item["is_impossible"] = impossible
    return item


def dataset(*qas: dict) -> list[dict]:
    return [{"title": "t", "paragraphs": [{"context": "some context", "qas": list(qas)}]}]


# ---------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Quick, brown fox!", "quick brown fox"),  # lower, punctuation, article, spaces
        ("an apple a day", "apple day"),  # all three articles, whole words only
        ("Theater anthem", "theater anthem"),  # 'the'/'an' inside words stay
        ("U.S.-based", "usbased"),  # punctuation removed without a space
        ("  tabs\tand\nnewlines ", "tabs and newlines"),
        ("the", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_f1_by_hand() -> None:
    # gold {santa, clara, california}, prediction {santa, clara}: 2 shared; P = 2/2, R = 2/3; F1 = 2PR/(P+R) = 0.8
    assert f1_score_v1("Santa Clara, California", "Santa Clara") == pytest.approx(0.8)
    assert f1_score_v2("Santa Clara, California", "Santa Clara") == pytest.approx(0.8)
    # repeated tokens count with multiplicity: gold [dog, dog], pred [dog]: 1 shared, P = 1, R = 1/2 -> 2/3
    assert f1_score_v2("dog dog", "dog") == pytest.approx(2 / 3)
    # the versions differ when either side normalises to nothing
    assert f1_score_v1("the", "") == 0.0  # v1.1: no overlap is 0
    assert f1_score_v2("the", "") == 1.0  # v2.0: both empty agree
    assert f1_score_v2("Paris", "") == 0.0
    assert exact_score("The Eiffel tower.", "eiffel  Tower") == 1


# ------------------------------------------------------------------------------------------------ v1.1
def test_v1_scores_by_hand() -> None:
    data = dataset(
        qa("q1", ["Denver Broncos", "the Denver Broncos"]),  # exact after normalisation: EM 1, F1 1
        qa("q2", ["Santa Clara, California"]),  # "Santa Clara": EM 0, F1 0.8 (see above)
        qa("q3", ["1"]),  # no prediction: scores 0 but counts
    )
    with pytest.warns(UserWarning, match="1 of 3 questions have no prediction"):
        result = squad_evaluate(data, {"q1": "denver broncos.", "q2": "Santa Clara"})
    assert set(result) == {"exact_match", "f1"}
    assert result["exact_match"] == pytest.approx(100 * 1 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)


def test_v1_and_v2_differ_on_answers_that_normalise_to_nothing() -> None:
    data = dataset(qa("q1", ["The"]))
    # v1.1 keeps the gold "The": EM = ("" == "") = 1, F1 = 0 (no shared token)
    assert squad_evaluate(data, {"q1": ""}, version="1.1") == {"exact_match": 100.0, "f1": 0.0}
    # v2.0 drops gold answers that normalise to "", leaving [""]; the question still counts as HasAns
    result = squad_evaluate(data, {"q1": ""}, version="2.0")
    assert (result["exact"], result["f1"], result["HasAns_total"]) == (100.0, 100.0, 1)


def test_max_over_gold_answers_v2() -> None:
    # gold "the big red dog" -> [big, red, dog]; pred [big, dog]: P 1, R 2/3 -> 0.8
    # gold "red dog" -> [red, dog]; pred shares "dog": P 1/2, R 1/2 -> 0.5;  max = 0.8
    result = squad_evaluate(dataset(qa("q", ["the big red dog", "red dog"], False)), {"q": "big dog"})
    assert result["f1"] == pytest.approx(80.0)
    assert result["exact"] == 0.0


# ------------------------------------------------------------------------------------------------ v2.0
V2 = dataset(
    qa("a1", ["Paris"], False),  # predicted "Paris": 1 / 1
    qa("a2", ["the big red dog", "red dog"], False),  # predicted "big dog": EM 0, F1 0.8
    qa("n1", [], True),  # predicted "": 1 / 1
    qa("n2", [], True),  # predicted "London": 0 / 0
)
V2_PREDS = {"a1": "Paris", "a2": "big dog", "n1": "", "n2": "London"}


def test_v2_scores_by_hand() -> None:
    result = squad_evaluate(V2, V2_PREDS)
    expected = {
        "exact": 100 * (1 + 0 + 1 + 0) / 4, "f1": 100 * (1 + 0.8 + 1 + 0) / 4, "total": 4,
        "HasAns_exact": 100 * (1 + 0) / 2, "HasAns_f1": 100 * (1 + 0.8) / 2, "HasAns_total": 2,
        "NoAns_exact": 100 * (1 + 0) / 2, "NoAns_f1": 100 * (1 + 0) / 2, "NoAns_total": 2,
    }
    assert result == pytest.approx(expected)
    assert not any(key.startswith("best") for key in result)  # only with na_probs


def test_v2_na_prob_threshold_and_best_threshold_by_hand() -> None:
    na_probs = {"a1": 0.1, "a2": 0.6, "n1": 0.9, "n2": 0.8}
    result = squad_evaluate(V2, V2_PREDS, na_probs=na_probs, na_prob_thresh=0.7)
    # Above 0.7: n1 (already right) and n2, which becomes right as "no answer": EM (1+0+1+1)/4, F1 (1+.8+1+1)/4.
    assert result["exact"] == pytest.approx(75.0)
    assert result["f1"] == pytest.approx(95.0)
    assert result["NoAns_exact"] == pytest.approx(100.0)
    # Best-threshold walk over raw EM (a1 1, a2 0, n1 1, n2 0), start = 2 unanswerable questions right:
    #   a1 (0.1): +1 -> 3 (new best, thresh 0.1); a2 (0.6): +0 -> 3; n2 (0.8): non-empty -> 2; n1 (0.9): "" -> 2
    assert result["best_exact"] == pytest.approx(100 * 3 / 4)
    assert result["best_exact_thresh"] == pytest.approx(0.1)
    # Raw F1 (1, 0.8, 1, 0): a1 -> 3 (0.1); a2 -> 3.8 (0.6, new best); n2 -> 2.8; n1 -> 2.8
    assert result["best_f1"] == pytest.approx(100 * 3.8 / 4)
    assert result["best_f1_thresh"] == pytest.approx(0.6)


def test_threshold_is_strict() -> None:
    # na_prob equal to the threshold does not count as "no answer" (official: na_prob > thresh)
    result = squad_evaluate(dataset(qa("n", [], True)), {"n": "x"}, na_probs={"n": 0.5}, na_prob_thresh=0.5)
    assert result["exact"] == 0.0
    result = squad_evaluate(dataset(qa("n", [], True)), {"n": "x"}, na_probs={"n": 0.51}, na_prob_thresh=0.5)
    assert result["exact"] == 100.0


def test_best_threshold_tie_behaviour_follows_na_probs_order() -> None:
    data = dataset(qa("a", ["yes"], False), qa("n", [], True))
    preds = {"a": "yes", "n": "something"}  # a is right when answered; n is wrong when answered
    # Tied probabilities: the stable sort keeps the na_probs order.
    # Order a, n: start 1 (n right as no-answer); a: +1 -> 2 > 1, best 2 at thresh 0.5; n: -1 -> 1.
    # The official walk reports 2/2 = 100 % at 0.5 although at 0.5 both are answered (really 50 %).
    result = squad_evaluate(data, preds, na_probs={"a": 0.5, "n": 0.5})
    assert (result["best_exact"], result["best_exact_thresh"]) == (100.0, 0.5)
    # Order n, a: start 1; n: -1 -> 0; a: +1 -> 1, not > 1: best stays 1 at the initial 0.0.
    result = squad_evaluate(data, preds, na_probs={"n": 0.5, "a": 0.5})
    assert (result["best_exact"], result["best_exact_thresh"]) == (50.0, 0.0)


def test_whitespace_only_prediction_is_non_empty_for_the_threshold_walk() -> None:
    # " " normalises to "" (right for an unanswerable question) but is a non-empty string, so the walk
    # subtracts 1 for it, as the official script does: start 1 -> 0; best stays 1 at 0.0.
    result = squad_evaluate(dataset(qa("n", [], True)), {"n": " "}, na_probs={"n": 0.3})
    assert result["exact"] == 100.0
    assert (result["best_exact"], result["best_exact_thresh"]) == (100.0, 0.0)


def test_no_breakdown_for_an_absent_group() -> None:
    result = squad_evaluate(dataset(qa("a", ["x"], False)), {"a": "x"})
    assert "HasAns_total" in result and "NoAns_total" not in result


def test_missing_predictions_count_as_wrong_in_v2() -> None:
    with pytest.warns(UserWarning, match="2 of 4 questions have no prediction"):
        result = squad_evaluate(V2, {"a1": "Paris", "n2": ""}, na_probs={"a1": 0.2, "n2": 0.4})
    # a1 right, n2 right (""), a2 and n1 missing -> 0; totals still count all four
    assert result["total"] == 4 and result["exact"] == pytest.approx(50.0)
    assert result["NoAns_exact"] == pytest.approx(50.0)
    # walk: start 1 (only the predicted unanswerable n2); a1 +1 -> 2 at 0.2; n2 "" -> 2: 2/4
    assert (result["best_exact"], result["best_exact_thresh"]) == (pytest.approx(50.0), 0.2)


def test_version_detection() -> None:
    assert detect_version(dataset(qa("q", ["x"]))) == "1.1"
    assert detect_version(dataset(qa("q", ["x"], False))) == "2.0"
    assert detect_version(dataset(qa("q", []))) == "2.0"  # v1.1 cannot score an answerless question
    assert detect_version({"data": dataset(qa("q", ["x"]))}) == "1.1"  # the whole file object works too


@settings(max_examples=60, deadline=None)
@given(gold=st.text(alphabet="ab .,", max_size=8), pred=st.text(alphabet="ab .,", max_size=8))
def test_scores_are_bounded_and_exact_implies_full_f1(gold: str, pred: str) -> None:
    f1 = f1_score_v2(gold, pred)
    assert 0.0 <= f1 <= 1.0
    if exact_score(gold, pred):
        assert f1 == 1.0


# ---------------------------------------------------------------------------------------------- errors
def test_bad_inputs_raise_naming_the_problem() -> None:
    data = dataset(qa("q1", ["x"], False))
    with pytest.raises(ValueError, match="'q1' is int"):
        squad_evaluate(data, {"q1": 3})
    with pytest.raises(ValueError, match="no na_prob"):
        squad_evaluate(data, {"q1": "x"}, na_probs={})
    with pytest.raises(ValueError, match="v1.1 evaluation takes no na_probs"):
        squad_evaluate(dataset(qa("q1", ["x"])), {"q1": "x"}, na_probs={"q1": 0.1})
    with pytest.raises(ValueError, match="version '3.0' is unknown"):
        squad_evaluate(data, {"q1": "x"}, version="3.0")
    with pytest.raises(ValueError, match="'q2'.*no field 'answers'"):
        squad_evaluate(dataset({"id": "q2", "question": "?"}), {})
    with pytest.raises(ValueError, match="'q1' occurs more than once"):
        squad_evaluate(dataset(qa("q1", ["x"]), qa("q1", ["y"])), {"q1": "x"})
    with pytest.raises(ValueError, match="question 'q1' has no gold answer"):
        squad_evaluate(dataset(qa("q1", [])), {"q1": ""}, version="1.1")


def test_unknown_prediction_ids_are_ignored_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="1 predictions are for ids not in the dataset"):
        result = squad_evaluate(dataset(qa("q1", ["x"])), {"q1": "x", "zz": "y"})
    assert result == {"exact_match": 100.0, "f1": 100.0}


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_evaluate_squad(tmp_path, capsys) -> None:
    (tmp_path / "dev.json").write_text(json.dumps({"version": "v2.0", "data": V2}), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(V2_PREDS), encoding="utf-8")
    (tmp_path / "na.json").write_text(json.dumps({"a1": 0.1, "a2": 0.6, "n1": 0.9, "n2": 0.8}), encoding="utf-8")
    out = tmp_path / "out" / "metrics.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is missing: no warning expected
        code = main(["evaluate", "squad", "--data-file", str(tmp_path / "dev.json"), "--pred-file",
                     str(tmp_path / "pred.json"), "--na-prob-file", str(tmp_path / "na.json"), "--out-file", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["exact"] == pytest.approx(50.0) and printed["best_f1"] == pytest.approx(95.0)
    assert json.loads(out.read_text(encoding="utf-8")) == printed


def test_cli_evaluate_squad_reports_bad_files(tmp_path, capsys) -> None:
    (tmp_path / "dev.json").write_text("{\"data\": [", encoding="utf-8")
    code = main(["evaluate", "squad", "--data-file", str(tmp_path / "dev.json"), "--pred-file", "nope.json"])
    assert code == 2
    err = capsys.readouterr().err
    assert "dev.json" in err and "line 1" in err and "invalid JSON" in err
