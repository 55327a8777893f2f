"""Read the official SQuAD v1.1 / v2.0 JSON into `SquadExample`s, reporting every question it cannot use.

Structure problems (a missing field, a wrong type, a duplicate question id) raise ValueError naming the file,
the question id (or the article/paragraph position) and the field. Data problems are never silently mislabeled:
- an answer whose `answer_start` is out of range, or whose text differs from `context` at `answer_start`, is
  listed in `report.bad_answers`; for training it is dropped, and a question left with no usable answer is
  skipped; for evaluation it is kept (the official scoring uses only the answer texts);
- a question with an empty question text or an empty context is skipped in both modes;
every skipped question is listed in `report.skipped` with its reason, and a non-empty report is logged once.
`plausible_answers` (v2.0) are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._common import DataFormatError, load_json, logger


@dataclass
class SquadExample:
    """One question on one context; `answers` holds {"text", "answer_start"} dicts (empty if impossible)."""

    qas_id: str
    question: str
    context: str
    answers: list[dict[str, Any]]
    is_impossible: bool = False
    title: str = ""


@dataclass(frozen=True)
class SquadProblem:
    qas_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.qas_id}: {self.reason}"


@dataclass
class SquadReadReport:
    """What the reader could not use: skipped questions and answers whose span does not match the context."""

    path: str
    num_questions: int = 0
    skipped: list[SquadProblem] = field(default_factory=list)
    bad_answers: list[SquadProblem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.skipped or self.bad_answers)

    def summary(self, max_ids: int = 5) -> str:
        parts = []
        if self.skipped:
            first = "; ".join(map(str, self.skipped[:max_ids]))
            parts.append(f"skipped {len(self.skipped)} of {self.num_questions} questions (first: {first})")
        if self.bad_answers:
            first = "; ".join(map(str, self.bad_answers[:max_ids]))
            parts.append(f"{len(self.bad_answers)} answers do not match the context (first: {first})")
        return f"{self.path}: " + ("; ".join(parts) if parts else "no problems")


@dataclass
class SquadDataset:
    """The result of `read_squad`: the usable examples, the format version and the problem report."""

    examples: list[SquadExample]
    version: str
    report: SquadReadReport


# ------------------------------------------------------------------------------------------- structure
def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    if key not in obj:
        raise DataFormatError(path, None, f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataFormatError(path, None, f"{where}: field {key!r} is {type(value).__name__}, expected {names}")
    return value


def _as_object(value: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataFormatError(path, None, f"{where} is {type(value).__name__}, expected an object")
    return value


def _walk(document: Any, path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(title, context, qa) for every question, after checking the structure and the fields' types."""
    document = _as_object(document, "the top level", path)
    articles = _get(document, "data", list, "the top level", path)
    seen: set[str] = set()
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        article = _as_object(article, where, path)
        title = article.get("title", "")
        for p, paragraph in enumerate(_get(article, "paragraphs", list, where, path)):
            where = f"data[{a}].paragraphs[{p}]"
            paragraph = _as_object(paragraph, where, path)
            context = _get(paragraph, "context", str, where, path)
            for q, qa in enumerate(_get(paragraph, "qas", list, where, path)):
                qa = _as_object(qa, f"{where}.qas[{q}]", path)
                qid = _get(qa, "id", str, f"{where}.qas[{q}]", path)
                if qid in seen:
                    raise DataFormatError(path, None, f"question {qid!r} ({where}.qas[{q}]): the id occurs twice")
                seen.add(qid)
                _check_question(qa, qid, path)
                yield str(title), context, qa


def _check_question(qa: dict[str, Any], qid: str, path: Path) -> None:
    where = f"question {qid!r}"
    _get(qa, "question", str, where, path)
    answers = _get(qa, "answers", list, where, path)
    if "is_impossible" in qa:
        impossible = _get(qa, "is_impossible", bool, where, path)
        if impossible and answers:
            raise DataFormatError(path, None, f"{where}: is_impossible is true but 'answers' is not empty")
    for i, answer in enumerate(answers):
        answer = _as_object(answer, f"{where} answers[{i}]", path)
        _get(answer, "text", str, f"{where} answers[{i}]", path)
        _get(answer, "answer_start", int, f"{where} answers[{i}]", path)


def _version(questions: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Same rule as the evaluator: v2.0 if any question has `is_impossible` or no answer."""
    return "2.0" if any("is_impossible" in qa or not qa["answers"] for _, _, qa in questions) else "1.1"


def _span_problem(context: str, answer: dict[str, Any]) -> str | None:
    text, start = answer["text"], answer["answer_start"]
    if not text.strip():
        return "empty answer text"
    if start < 0 or start + len(text) > len(context):
        return (f"answer_start {start} with an answer of {len(text)} characters is outside the "
                f"{len(context)}-character context")
    found = context[start:start + len(text)]
    if found != text:
        return f"answer text {text!r} does not match the context at {start} ({found!r})"
    return None


def _example(title: str, context: str, qa: dict[str, Any], training: bool,
             report: SquadReadReport) -> SquadExample | None:
    qid = qa["id"]
    if not context.strip():
        report.skipped.append(SquadProblem(qid, "empty context"))
        return None
    if not qa["question"].strip():
        report.skipped.append(SquadProblem(qid, "empty question"))
        return None
    answers = []
    for i, answer in enumerate(qa["answers"]):
        problem = _span_problem(context, answer)
        if problem is not None:
            report.bad_answers.append(SquadProblem(qid, f"answers[{i}]: {problem}"))
            if training:
                continue
        answers.append({"text": answer["text"], "answer_start": answer["answer_start"]})
    impossible = bool(qa.get("is_impossible", False))
    if training and not impossible and not answers:
        reason = "no answer matches the context" if qa["answers"] else "no answers and not is_impossible"
        report.skipped.append(SquadProblem(qid, reason))
        return None
    return SquadExample(qid, qa["question"], context, answers, impossible, title)


def read_squad(path: str | os.PathLike, training: bool = False) -> SquadDataset:
    """All usable questions of a SQuAD JSON file, in file order, with a report of what was left out and why.

    `training=True` drops answers whose span does not match the context (and questions left without one);
    `training=False` keeps them for evaluation. See the module docstring for the rules.
    """
    path = Path(path)
    questions = list(_walk(load_json(path, "SQuAD file"), path))
    if not questions:
        raise DataFormatError(path, None, "the file holds no questions")
    report = SquadReadReport(str(path), num_questions=len(questions))
    examples = [ex for ex in (_example(t, c, qa, training, report) for t, c, qa in questions) if ex is not None]
    if report:
        logger.warning("%s", report.summary())
    if not examples:
        raise DataFormatError(path, None, f"no usable questions: {report.summary()}")
    return SquadDataset(examples, _version(questions), report)


def load_squad_dataset_for_eval(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The file's `data` list, checked for structure, unchanged: what `squad_evaluate` takes."""
    path = Path(path)
    document = load_json(path, "SQuAD file")
    if sum(1 for _ in _walk(document, path)) == 0:  # walks every question: each is checked
        raise DataFormatError(path, None, "the file holds no questions")
    return document["data"]


def read_squad_predictions(path: str | os.PathLike) -> dict[str, str]:
    """A predictions file: one JSON object, question id -> answer text ('' for no answer)."""
    path = Path(path)
    predictions = _as_object(load_json(path, "predictions file"), "the top level", path)
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise DataFormatError(path, None, f"the prediction for {qid!r} is {type(text).__name__}, expected a "
                                              "string ('' for no answer)")
    return predictions


def read_na_probs(path: str | os.PathLike) -> dict[str, float]:
    """A no-answer probability file: one JSON object, question id -> number."""
    path = Path(path)
    probs = _as_object(load_json(path, "na_prob file"), "the top level", path)
    for qid, value in probs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataFormatError(path, None, f"the na_prob for {qid!r} is {value!r}, expected a number")
    return {qid: float(value) for qid, value in probs.items()}
