"""Read multiple-choice data: RACE in its official layout, and the user's own CSV / TSV / JSON-lines tables.

RACE (Lai et al., 2017) ships as `<dir>/{train,dev,test}/{high,middle}/*.txt`; each file holds one JSON object
with `article`, `questions` (list of str), `options` (one list of choices per question), `answers` (one letter
per question, "A" for the first choice) and `id`. Every question becomes one `ChoiceExample`; its `subset` is the
folder ("middle" or "high"), so accuracy can be reported for RACE-M and RACE-H apart. Errors name the file, the
question number (1-based) and the field; a file that is not JSON names its line and column.

Tables (SWAG-like: any number of choices): one row per question, with a context column, an optional question
column, and the choices either in several columns (`choice_columns=("a", "b", "c", "d")`) or in one list-valued
JSON-lines field (`choice_columns=("endings",)`). Every row of one file must have the same number of choices, so
that a file makes one [n, num_choices, seq_len] array. Labels: a JSON integer is a choice index (0-based); a
string equal to one of the row's choices selects that choice; any other string of digits is an index. Rows are
read by `data/tabular.py` (the same CSV/TSV/JSONL rules and messages as `read_tabular`).

With `skip_bad_rows=True` a malformed question or row is left out, listed in the result's `skipped` and
summarised in one logged warning (a RACE file that cannot be read at all is one skipped entry).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, InputError, MissingFileError
from ._common import ExampleList, SkippedRow, collect_examples, decoding_error, logger, require_file
from .tabular import BadRow, detect_format, string_field, table_records

RACE_SUBSETS = ("middle", "high")  # the folder names; reported as RACE-M and RACE-H
RACE_SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class ChoiceExample:
    """One question with its choices. `label` is the index of the right choice (None when unlabelled)."""

    guid: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: int | None = None
    subset: str | None = None  # RACE: "middle" or "high"

    @property
    def num_choices(self) -> int:
        return len(self.choices)


def choice_letter(index: int) -> str:
    """0 -> "A", 1 -> "B", ...: how RACE writes answers."""
    return chr(ord("A") + index)


# ------------------------------------------------------------------------------------------------- RACE
def race_files(data_dir: str | os.PathLike, split: str,
               subsets: Sequence[str] = RACE_SUBSETS) -> list[tuple[str, Path]]:
    """(subset, file) for every `*.txt` of `<data_dir>/<split>/<subset>/`, sorted by name within each subset."""
    if split not in RACE_SPLITS:
        raise InputError(f"RACE split {split!r} is unknown; expected one of {', '.join(RACE_SPLITS)}")
    unknown = [s for s in subsets if s not in RACE_SUBSETS]
    if unknown or not subsets:
        raise InputError(f"RACE subsets {list(subsets)!r}: expected some of {', '.join(RACE_SUBSETS)}")
    root = Path(data_dir)
    if not root.is_dir():
        raise MissingFileError(f"RACE directory {root} does not exist"
                               if not root.exists() else f"RACE directory {root} is not a directory")
    found = []
    for subset in subsets:
        folder = root / split / subset
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: no such directory; expected the RACE layout "
                                   f"<data-dir>/{{{','.join(RACE_SPLITS)}}}/{{{','.join(RACE_SUBSETS)}}}/*.txt")
        found.extend((subset, path) for path in sorted(folder.glob("*.txt")))
    if not found:
        raise MissingFileError(f"{root / split}: no *.txt files in {', '.join(subsets)}")
    return found


class _BadFile(ValueError):
    """A RACE file that is not JSON: the line of the error and why."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line


def _load_race_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        found = decoding_error(path, err)
        raise _BadFile(found.line, f"not UTF-8 text ({err.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _BadFile(err.lineno, f"not a RACE file: invalid JSON at column {err.colno}: {err.msg}") from None


def _race_document(path: Path, data: Any) -> tuple[str, list, list, list]:
    """The article, questions, options and answers of one file, checked as a whole (ValueError: the reason)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object with article, questions, options, answers; got "
                         f"{type(data).__name__}")
    for key in ("article", "questions", "options", "answers"):
        if key not in data:
            raise ValueError(f"no field {key!r}")
    article = data["article"]
    if not isinstance(article, str):
        raise ValueError(f"field 'article' is {type(article).__name__}, expected a string")
    if not article.strip():
        raise ValueError("field 'article' is empty")
    lists = {key: data[key] for key in ("questions", "options", "answers")}
    for key, value in lists.items():
        if not isinstance(value, list):
            raise ValueError(f"field {key!r} is {type(value).__name__}, expected a list")
    sizes = {key: len(value) for key, value in lists.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError("fields 'questions', 'options' and 'answers' must have one entry per question; lengths "
                         + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return article, lists["questions"], lists["options"], lists["answers"]


def _race_question(question: Any, options: Any, answer: Any, number: int) -> tuple[str, tuple[str, ...], int]:
    """One question's text, choices and label index (ValueError: the reason, naming the question and field)."""
    where = f"question {number}"
    if not isinstance(question, str):
        raise ValueError(f"{where}: field 'questions' holds {question!r}, expected a string")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        raise ValueError(f"{where}: field 'options' holds {options!r}, expected a list of two or more strings")
    letters = [choice_letter(i) for i in range(len(options))]
    if not isinstance(answer, str) or answer.strip() not in letters:
        raise ValueError(f"{where}: field 'answers' holds {answer!r}, expected one of {', '.join(letters)} "
                         f"(one letter per option)")
    return question, tuple(options), ord(answer.strip()) - ord("A")


def _race_file_examples(path: Path, subset: str, skip_bad_rows: bool,
                        skipped: list[SkippedRow]) -> list[ChoiceExample]:
    """The examples of one RACE file; a bad file or question raises, or (skip_bad_rows) is recorded in `skipped`."""
    try:
        article, questions, options, answers = _race_document(path, _load_race_file(path))
    except ValueError as err:  # the whole file is unusable; not JSON: `line` says where
        line = err.line if isinstance(err, _BadFile) else None
        if not skip_bad_rows:
            raise DataFormatError(path, line, str(err)) from None
        skipped.append(SkippedRow(str(path), line or 0, f"whole file skipped: {err}"))
        return []
    examples = []
    for i, (question, choices, answer) in enumerate(zip(questions, options, answers)):
        try:
            text, choice_texts, label = _race_question(question, choices, answer, i + 1)
        except ValueError as err:
            if not skip_bad_rows:
                raise DataFormatError(path, None, str(err)) from None
            skipped.append(SkippedRow(str(path), 0, str(err)))
            continue
        examples.append(ChoiceExample(f"{subset}/{path.name}/{i}", article, text, choice_texts, label, subset))
    return examples


def read_race(data_dir: str | os.PathLike, split: str, subsets: Sequence[str] = RACE_SUBSETS,
              skip_bad_rows: bool = False) -> ExampleList:
    """Every question of `<data_dir>/<split>/{middle,high}/*.txt` as a `ChoiceExample` (guid
    "<subset>/<file>/<question index>"). Files are read in name order, middle before high.

    With `skip_bad_rows`, `skipped` holds one entry per bad question or unreadable file; RACE files have no
    line structure, so an entry's `line` is 0 (its reason names the question) except for a file that is not
    JSON (the line of the syntax error)."""
    examples: list[ChoiceExample] = []
    skipped: list[SkippedRow] = []
    files = race_files(data_dir, split, subsets)
    for subset, path in files:
        examples.extend(_race_file_examples(path, subset, skip_bad_rows, skipped))
    where = Path(data_dir) / split
    if skipped:  # RACE has no line numbers: the reasons name the file and question instead
        logger.warning("%s: skipped %d malformed entries, %d questions kept (first: %s)", where, len(skipped),
                       len(examples), "; ".join(f"{row.path}: {row.reason}" for row in skipped[:3]))
    if not examples:
        raise DataFormatError(where, None, f"no questions in {len(files)} files"
                                           + (f" (all {len(skipped)} entries were malformed)" if skipped else ""))
    return ExampleList(examples, skipped)


# ------------------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class ChoiceColumns:
    """Where a table keeps each part of a question. One `choice_columns` name means a list-valued field (JSONL)."""

    context_column: str
    choice_columns: tuple[str, ...]
    question_column: str | None = None
    label_column: str | None = None
    id_column: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.choice_columns, str):
            raise InputError("choice_columns: expected a sequence of column names, got a string")
        names = [self.context_column, *self.choice_columns, self.question_column, self.label_column, self.id_column]
        if not self.context_column or not self.choice_columns or not all(
                isinstance(n, str) and n for n in names if n is not None):
            raise InputError(f"{self}: expected non-empty column names (a context column and choice columns)")

    @property
    def wanted(self) -> list[str]:
        return [c for c in (self.context_column, self.question_column, *self.choice_columns, self.label_column,
                            self.id_column) if c is not None]

    def to_json(self) -> dict[str, Any]:
        return {"context_column": self.context_column, "question_column": self.question_column,
                "choice_columns": list(self.choice_columns), "label_column": self.label_column,
                "id_column": self.id_column}


def _choices(record: dict[str, Any], columns: tuple[str, ...]) -> tuple[str, ...]:
    if len(columns) > 1:
        return tuple(string_field(record, column) for column in columns)
    column = columns[0]
    if column not in record:
        raise ValueError(f"no field {column!r}")
    value = record[column]
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {column!r} is {value!r}, expected a list of two or more strings (or name one "
                         "column per choice)")
    return tuple(value)


def _choice_label(value: Any, choices: tuple[str, ...], column: str) -> int:
    """A label as a choice index: an integer index, a choice's text, or a string of digits (see module docstring)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"label field {column!r} is {value!r}, expected a choice index or a choice's text")
    if isinstance(value, str):
        if value in choices:
            return choices.index(value)
        if not value.strip().lstrip("-").isdigit():
            raise ValueError(f"label field {column!r} is {value!r}: neither one of the choices nor an index")
        value = int(value)
    if not 0 <= value < len(choices):
        raise ValueError(f"label field {column!r} is {value}, expected a choice index from 0 to {len(choices) - 1}")
    return value


def read_choice_table(path: str | os.PathLike, columns: ChoiceColumns, *, format: str | None = None,
                      skip_bad_rows: bool = False) -> ExampleList:
    """`ChoiceExample`s from a CSV/TSV/JSONL file (labels None when `columns.label_column` is None).

    The first good row fixes the number of choices; a row with another number is an error naming the file, the
    line and both counts (or, with `skip_bad_rows`, a skipped row)."""
    path = require_file(Path(path), "data file")
    fmt = detect_format(path, format)
    if len(columns.choice_columns) == 1 and fmt != "jsonl":
        raise InputError(f"{path}: one choice column ({columns.choice_columns[0]!r}) means a list-valued field, "
                         "which only JSON lines can hold; name one column per choice")
    first: dict[str, int] = {}  # the first good row's choice count and line

    def parse(line: int, record: dict[str, Any] | BadRow) -> ChoiceExample:
        if isinstance(record, BadRow):
            raise ValueError(record.reason)
        choices = _choices(record, columns.choice_columns)
        if first and len(choices) != first["count"]:
            raise ValueError(f"{len(choices)} choices, but line {first['line']} has {first['count']}: every row "
                             "of a file needs the same number of choices")
        example = _table_example(record, columns, choices, line)
        first.setdefault("count", len(choices))
        first.setdefault("line", line)
        return example

    examples, skipped = collect_examples(path, table_records(path, fmt, columns.wanted), parse, skip_bad_rows,
                                         "no examples")
    return ExampleList(examples, skipped)


def _table_example(record: dict[str, Any], columns: ChoiceColumns, choices: tuple[str, ...],
                   line: int) -> ChoiceExample:
    context = string_field(record, columns.context_column)
    question = string_field(record, columns.question_column) if columns.question_column else ""
    if not (context.strip() or question.strip()):
        raise ValueError(f"fields {columns.context_column!r}"
                         + (f" and {columns.question_column!r}" if columns.question_column else "") + " are empty")
    label = None
    if columns.label_column is not None:
        if columns.label_column not in record:
            raise ValueError(f"no label field {columns.label_column!r}")
        label = _choice_label(record[columns.label_column], choices, columns.label_column)
    if columns.id_column is not None and columns.id_column not in record:
        raise ValueError(f"no id field {columns.id_column!r}")
    guid = str(record[columns.id_column]) if columns.id_column is not None else f"line-{line}"
    return ChoiceExample(guid, context, question, choices, label)


def same_choice_count(examples: Iterable[ChoiceExample], what: str) -> int:
    """The one number of choices of `examples` (train and dev may come from different files)."""
    counts = sorted({example.num_choices for example in examples})
    if len(counts) != 1:
        raise InputError(f"{what}: questions have {', '.join(map(str, counts))} choices; every question of one "
                         "data set needs the same number")
    return counts[0]
