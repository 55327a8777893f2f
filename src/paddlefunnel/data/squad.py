"""Read the official SQuAD v1.1 / v2.0 JSON into `SquadExample`s, reporting every question it cannot use.

Structure problems (a missing field, a wrong type, a duplicate question id) raise DataFormatError (an InputError)
naming the file, the question id (or the article/paragraph position) and the field. `squad_questions` is that
check, the only one: `paddlefunnel.metrics.squad` applies it to the data it scores.
Data problems are never silently mislabeled:
- an answer whose `answer_start` is out of range, or whose text differs from `context` at `answer_start`, is
  listed in `report.bad_answers`; for training it is dropped, and a question left with no usable answer is
  skipped; for evaluation it is kept (the official scoring uses only the answer texts);
- a question with an empty question text or an empty context is skipped in both modes;
every skipped question is listed in `report.skipped` with its reason, and a non-empty report is logged once.
`plausible_answers` (v2.0) are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from ._common import load_json, logger

Source = str | os.PathLike  # a file, or the name errors give an in-memory document


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
# The one check of SQuAD's structure, for the readers here and for `paddlefunnel.metrics.squad`. `source` names
# the data in errors: the file, or what the caller calls an in-memory document ("SQuAD dataset").
Question = tuple[str, str, Mapping[str, Any]]  # (title, context, qa)


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, source: Source) -> Any:
    if key not in obj:
        raise DataFormatError(source, None, f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataFormatError(source, None, f"{where}: field {key!r} is {type(value).__name__}, expected {names}")
    return value


def _as_object(value: Any, where: str, source: Source) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataFormatError(source, None, f"{where} is {type(value).__name__}, expected an object")
    return value


def _walk(document: Any, source: Source) -> Iterator[Question]:
    """Every question, after checking the structure, the fields' types and that no id occurs twice."""
    document = _as_object(document, "the top level", source)
    articles = _get(document, "data", list, "the top level", source)
    seen: dict[str, str] = {}
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        article = _as_object(article, where, source)
        title = article.get("title", "")
        for p, paragraph in enumerate(_get(article, "paragraphs", list, where, source)):
            where = f"data[{a}].paragraphs[{p}]"
            paragraph = _as_object(paragraph, where, source)
            context = _get(paragraph, "context", str, where, source)
            for q, qa in enumerate(_get(paragraph, "qas", list, where, source)):
                qa = _as_object(qa, f"{where}.qas[{q}]", source)
                qid = _get(qa, "id", str, f"{where}.qas[{q}]", source)
                if qid in seen:
                    raise DataFormatError(source, None, f"question {qid!r} occurs more than once: the id occurs "
                                                        f"twice, at {seen[qid]} and {where}.qas[{q}]")
                seen[qid] = f"{where}.qas[{q}]"
                _check_question(qa, qid, source)
                yield str(title), context, qa


def _check_question(qa: Mapping[str, Any], qid: str, source: Source) -> None:
    where = f"question {qid!r}"
    _get(qa, "question", str, where, source)
    if "answers" not in qa:  # the one field whose absence is easily meant as "no answer"
        raise DataFormatError(source, None, f"{where} has no field 'answers' (a question without an answer has "
                                            "an empty list)")
    answers = _get(qa, "answers", list, where, source)
    if "is_impossible" in qa:
        impossible = _get(qa, "is_impossible", bool, where, source)
        if impossible and answers:
            raise DataFormatError(source, None, f"{where}: is_impossible is true but 'answers' is not empty")
    for i, answer in enumerate(answers):
        answer = _as_object(answer, f"{where} answers[{i}]", source)
        _get(answer, "text", str, f"{where} answers[{i}]", source)
        _get(answer, "answer_start", int, f"{where} answers[{i}]", source)


def squad_questions(document: Any, source: Source) -> list[Question]:
    """(title, context, qa) for every question of a SQuAD document (the file's top-level object), checked:
    a structure problem raises DataFormatError naming `source`, the question id (or the article / paragraph
    position) and the field; so does a document without questions."""
    questions = list(_walk(document, source))
    if not questions:
        raise DataFormatError(source, None, "it holds no questions")
    return questions


def squad_version(questions: Iterable[Question]) -> str:
    """'2.0' if any question has an `is_impossible` field or no gold answer (v1.1 cannot score it), else '1.1'."""
    return "2.0" if any("is_impossible" in qa or not qa["answers"] for _, _, qa in questions) else "1.1"


def _span_problem(context: str, answer: Mapping[str, Any]) -> str | None:
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


def _example(title: str, context: str, qa: Mapping[str, Any], training: bool,
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
    questions = squad_questions(load_json(path, "SQuAD file"), path)
    report = SquadReadReport(str(path), num_questions=len(questions))
    examples = [ex for ex in (_example(t, c, qa, training, report) for t, c, qa in questions) if ex is not None]
    if report:
        logger.warning("%s", report.summary())
    if not examples:
        raise DataFormatError(path, None, f"no usable questions: {report.summary()}")
    return SquadDataset(examples, squad_version(questions), report)


def load_squad_dataset_for_eval(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The file's `data` list, checked for structure, unchanged: what `squad_evaluate` takes."""
    path = Path(path)
    document = load_json(path, "SQuAD file")
    squad_questions(document, path)
    return document["data"]


# ---------------------------------------------------------------------------------- predictions, na_probs
def check_predictions(predictions: Mapping[str, Any], source: Source) -> dict[str, str]:
    """Question id -> answer text ('' for no answer), checked; errors name `source`."""
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise DataFormatError(source, None, f"the prediction for {qid!r} is {type(text).__name__}, expected "
                                                "a string ('' for no answer)")
    return dict(predictions)


def check_na_probs(na_probs: Mapping[str, Any], source: Source) -> dict[str, float]:
    """Question id -> probability of "no answer", checked and as floats; errors name `source`."""
    for qid, value in na_probs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataFormatError(source, None, f"the na_prob for {qid!r} is {value!r}, expected a number")
    return {qid: float(value) for qid, value in na_probs.items()}


def _read_object(path: Path, what: str) -> Mapping[str, Any]:
    return _as_object(load_json(path, what), "the top level", path)


def read_squad_predictions(path: str | os.PathLike) -> dict[str, str]:
    """A predictions file: one JSON object, question id -> answer text ('' for no answer)."""
    path = Path(path)
    return check_predictions(_read_object(path, "predictions file"), path)


def read_na_probs(path: str | os.PathLike) -> dict[str, float]:
    """A no-answer probability file: one JSON object, question id -> number."""
    path = Path(path)
    return check_na_probs(_read_object(path, "na_prob file"), path)
