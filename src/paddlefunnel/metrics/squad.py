"""SQuAD v1.1 and v2.0 evaluation, scoring exactly as the official evaluation scripts do.

Numbers must be comparable with published results, so the quirks of the official scripts are kept on purpose:
the answer normalisation, v1.1 scoring an empty prediction against an empty gold answer as F1 0 while v2.0
scores it 1, v2.0 dropping gold answers that normalise to nothing, and the v2.0 threshold search
(`find_best_thresh`) that walks questions in na_prob order and may pick a threshold inside a run of tied
probabilities.

Deliberate difference: a question without a prediction scores 0 and is counted in every total, in both versions
(the v1.1 script does so; the v2.0 script skips it and then fails on the HasAns/NoAns breakdown).
A warning says how many predictions are missing.

Version: `version="1.1"` or `"2.0"`, or automatic: v2.0 when any question carries an `is_impossible` field
(every question in a v2.0 file does, none in a v1.1 file) or has an empty `answers` list (v1.1 cannot score it).

The data set, the predictions and the na_probs are checked by `paddlefunnel.data.squad`, the owner of SQuAD's
format, with the same rules as when they are read from files.
"""

from __future__ import annotations

import collections
import re
import string
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..data.squad import Question, check_na_probs, check_predictions, squad_questions, squad_version
from ..errors import InputError

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_VERSIONS = {"1.1": "1.1", "v1.1": "1.1", "1": "1.1", "2.0": "2.0", "v2.0": "2.0", "2": "2.0"}


# ------------------------------------------------------------------------------------------ normalisation
def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def _overlap_f1(gold_tokens: list[str], pred_tokens: list[str]) -> float:
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_score(gold: str, prediction: str) -> int:
    """1 when both answers normalise to the same string, else 0."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score_v1(gold: str, prediction: str) -> float:
    """Token-overlap F1 as in the v1.1 script: no overlap (including both empty) scores 0."""
    return _overlap_f1(_tokens(gold), _tokens(prediction))


def f1_score_v2(gold: str, prediction: str) -> float:
    """Token-overlap F1 as in the v2.0 script: if either side is empty, 1 when both are, else 0."""
    gold_tokens, pred_tokens = _tokens(gold), _tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    return _overlap_f1(gold_tokens, pred_tokens)


# ------------------------------------------------------------------------------------------ the data set
Dataset = Sequence[Mapping[str, Any]] | Mapping[str, Any]  # the file's `data` list, or its top-level object


def _questions(dataset: Dataset) -> list[Question]:
    document = dataset if isinstance(dataset, Mapping) else {"data": dataset}
    return squad_questions(document, "SQuAD dataset")


def detect_version(dataset: Dataset) -> str:
    """'2.0' if any question has an `is_impossible` field or no gold answer, else '1.1'."""
    return squad_version(_questions(dataset))


def _gold_answers(questions: list[Question]) -> dict[str, list[str]]:
    return {qa["id"]: [answer["text"] for answer in qa["answers"]] for _, _, qa in questions}


# ------------------------------------------------------------------------------------------- evaluation
def _check_predictions(predictions: Mapping[str, Any], gold: Mapping[str, list[str]]) -> list[str]:
    if not isinstance(predictions, Mapping):
        raise InputError(f"SQuAD predictions: expected a mapping question id -> answer text, got "
                         f"{type(predictions).__name__}")
    check_predictions(predictions, "SQuAD predictions")
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        warnings.warn(f"SQuAD evaluation: {len(missing)} of {len(gold)} questions have no prediction and score 0 "
                      f"(first: {', '.join(missing[:5])})", stacklevel=3)
    extra = sum(1 for qid in predictions if qid not in gold)
    if extra:
        warnings.warn(f"SQuAD evaluation: {extra} predictions are for ids not in the dataset and were ignored",
                      stacklevel=3)
    return missing


def _evaluate_v1(gold: Mapping[str, list[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        if not answers:
            raise InputError(f"SQuAD v1.1 evaluation: question {qid!r} has no gold answer (use version 2.0)")
        exact += max(exact_score(a, predictions[qid]) for a in answers)
        f1 += max(f1_score_v1(a, predictions[qid]) for a in answers)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}


def _raw_scores_v2(gold: Mapping[str, list[str]], predictions: Mapping[str, str]) -> tuple[dict, dict]:
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    for qid, answers in gold.items():
        if qid not in predictions:
            exact[qid] = f1[qid] = 0.0
            continue
        # Gold answers that normalise to nothing are dropped; an unanswerable question's only answer is "".
        answers = [a for a in answers if normalize_answer(a)] or [""]
        exact[qid] = max(exact_score(a, predictions[qid]) for a in answers)
        f1[qid] = max(f1_score_v2(a, predictions[qid]) for a in answers)
    return exact, f1


def _apply_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float], has_answer: Mapping[str, bool],
                     predictions: Mapping[str, str], thresh: float) -> dict[str, float]:
    """A question whose na_prob exceeds the threshold is predicted unanswerable: right iff it has no answer."""
    return {
        qid: float(not has_answer[qid]) if qid in predictions and na_probs[qid] > thresh else score
        for qid, score in scores.items()
    }


def _summary(exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]) -> dict[str, float]:
    return {
        "exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
        "f1": 100.0 * sum(f1[q] for q in qids) / len(qids),
        "total": len(qids),
    }


def find_best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                        has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """The official search: (best score in %, the na_prob threshold reaching it).

    Start from "every question is answered unanswerable" (threshold 0.0, worth one point per unanswerable
    question), then switch questions to "answered" one by one in increasing na_prob order (Python's stable sort:
    ties stay in `na_probs` order), keeping the first running score that strictly beats the best so far.
    Questions without a prediction always score 0.
    """
    answered = [qid for qid in scores if qid in predictions]
    current = sum(1 for qid in answered if not has_answer[qid])
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores or qid not in predictions:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def _check_na_probs(na_probs: Mapping[str, Any], predictions: Mapping[str, str],
                    gold: Mapping[str, list[str]]) -> dict[str, float]:
    if not isinstance(na_probs, Mapping):
        raise InputError(f"SQuAD na_probs: expected a mapping question id -> probability, got "
                         f"{type(na_probs).__name__}")
    lacking = [qid for qid in gold if qid in predictions and qid not in na_probs]
    if lacking:
        raise InputError(f"SQuAD na_probs: {len(lacking)} predicted questions have no na_prob "
                         f"(first: {', '.join(lacking[:5])})")
    return check_na_probs(na_probs, "SQuAD na_probs")


def _evaluate_v2(gold: Mapping[str, list[str]], predictions: Mapping[str, str],
                 na_probs: Mapping[str, float] | None, na_prob_thresh: float) -> dict[str, float]:
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw, f1_raw = _raw_scores_v2(gold, predictions)
    probs = {qid: 0.0 for qid in predictions} if na_probs is None else na_probs
    exact = _apply_threshold(exact_raw, probs, has_answer, predictions, na_prob_thresh)
    f1 = _apply_threshold(f1_raw, probs, has_answer, predictions, na_prob_thresh)
    result = _summary(exact, f1, list(gold))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has is wanted]
        if qids:  # like the official script, a breakdown appears only when it has questions
            result.update({f"{prefix}_{key}": value for key, value in _summary(exact, f1, qids).items()})
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = find_best_threshold(predictions, exact_raw, na_probs,
                                                                                has_answer)
        result["best_f1"], result["best_f1_thresh"] = find_best_threshold(predictions, f1_raw, na_probs, has_answer)
    return result


def _requested_version(version: str | None) -> str | None:
    """'1.1' or '2.0' as asked, or None to detect it from the data."""
    if version is None or version == "auto":
        return None
    if str(version) not in _VERSIONS:
        raise InputError(f"SQuAD version {version!r} is unknown; expected '1.1', '2.0' or None (detect)")
    return _VERSIONS[str(version)]


def squad_evaluate(
    dataset: Dataset,
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
    version: str | None = None,
) -> dict[str, float]:
    """Score `predictions` (question id -> answer text, '' = no answer) like the official SQuAD scripts.

    `dataset` is the file's `data` list (or the whole top-level object), checked as `read_squad` checks a file.
    v1.1 returns `exact_match` and `f1`; v2.0 returns `exact`, `f1`, `total`, the `HasAns_*` / `NoAns_*`
    breakdowns and, when `na_probs` (question id -> probability of "no answer") is given, `best_exact`,
    `best_exact_thresh`, `best_f1`, `best_f1_thresh`. All scores are percentages.
    """
    requested = _requested_version(version)
    questions = _questions(dataset)
    version = requested or squad_version(questions)
    gold = _gold_answers(questions)
    _check_predictions(predictions, gold)
    if version == "1.1":
        if na_probs is not None:
            raise InputError("SQuAD v1.1 evaluation takes no na_probs (no-answer probabilities are a v2.0 notion)")
        return _evaluate_v1(gold, predictions)
    if na_probs is not None:
        na_probs = _check_na_probs(na_probs, predictions, gold)
    return _evaluate_v2(gold, predictions, na_probs, float(na_prob_thresh))
