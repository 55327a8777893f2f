"""Read a user's own classification or regression data from CSV, TSV or JSON lines.

Formats, chosen by `format=` or the file extension (.csv, .tsv/.tab, .jsonl/.ndjson):
- CSV: a header row naming the columns, standard CSV quoting.
- TSV: a header row, tab-separated, unquoted (like GLUE: one line is one row, quotes are plain characters).
- JSON lines: one JSON object per line; text fields must be strings, labels strings, numbers or booleans.
Blank lines are ignored. Every error names the file, the line and the column or key.

Classification labels are strings (JSON numbers and booleans are written as JSON writes them: 1, true). The
label vocabulary comes from `label_list`, or is discovered from the file itself (pass the train file's
`label_list` when reading dev/test): sorted numerically when every label is an integer, else alphabetically,
so it does not depend on row order.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import DataFormatError, InputError
from ._common import Example, ExampleList, collect_examples, decoding_error, require_file

FORMATS = ("csv", "tsv", "jsonl")
TASKS = ("classification", "regression")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class BadRow(NamedTuple):
    """A row that could not even be split into fields; parsing it raises `reason` (or skips it)."""

    reason: str


Record = dict[str, Any] | BadRow


def detect_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The explicit `format`, else the one the extension names."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"format {format!r} is unknown; expected one of {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise InputError(f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; expected "
                         f"{', '.join(_EXTENSIONS)} or pass format= one of {', '.join(FORMATS)}")
    return _EXTENSIONS[suffix]


# ----------------------------------------------------------------------------------------- raw records
def _delimited_records(path: Path, delimiter: str, quoting: int,
                       wanted: Sequence[str]) -> Iterator[tuple[int, Record]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader, None)
            if header is None:
                raise DataFormatError(path, None, "the file is empty; expected a header row naming the columns")
            names = [name.strip() for name in header]
            missing = [name for name in wanted if name not in names]
            if missing:
                raise DataFormatError(path, reader.line_num, f"no column {missing[0]!r} in the header; the columns "
                                                             f"are {names}")
            for row in reader:
                if not row or row == [""]:
                    continue
                if len(row) != len(names):
                    yield reader.line_num, BadRow(f"expected {len(names)} fields like the header, found {len(row)}")
                    continue
                yield reader.line_num, dict(zip(names, row))
        except UnicodeDecodeError as err:
            raise decoding_error(path, err) from None
        except csv.Error as err:
            raise DataFormatError(path, reader.line_num, f"CSV syntax error: {err}") from None


def jsonl_records(path: Path) -> Iterator[tuple[int, Record]]:
    with open(path, encoding="utf-8-sig") as handle:
        try:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as err:
                    yield line, BadRow(f"invalid JSON at column {err.colno}: {err.msg}")
                    continue
                if not isinstance(record, dict):
                    yield line, BadRow(f"expected a JSON object, got {type(record).__name__}")
                    continue
                yield line, record
        except UnicodeDecodeError as err:
            raise decoding_error(path, err) from None


# ---------------------------------------------------------------------------------------------- fields
def string_field(record: dict[str, Any], column: str) -> str:
    if column not in record:
        raise ValueError(f"no field {column!r}")
    value = record[column]
    if not isinstance(value, str):
        raise ValueError(f"field {column!r} is {value!r}, expected a string")
    return value


def _raw_label(record: dict[str, Any], column: str) -> Any:
    if column not in record:
        raise ValueError(f"no label field {column!r}")
    return record[column]


def _class_label(value: Any, column: str) -> str:
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if not isinstance(value, str):
        raise ValueError(f"label field {column!r} is {value!r}, expected a string, number or boolean")
    if not value.strip():
        raise ValueError(f"label field {column!r} is empty")
    return value


def _regression_label(value: Any, column: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"label field {column!r} is {value!r}, expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"label field {column!r} is {value!r}, expected a number") from None
    if not math.isfinite(number):
        raise ValueError(f"label field {column!r} is {value!r}, expected a finite number")
    return number


def _discover_labels(labels: Sequence[str]) -> tuple[str, ...]:
    unique = set(labels)
    try:
        return tuple(sorted(unique, key=int))
    except ValueError:
        return tuple(sorted(unique))


# ---------------------------------------------------------------------------------------------- reader
def table_records(path: Path, fmt: str, wanted: Sequence[str]) -> Iterator[tuple[int, Record]]:
    if fmt == "jsonl":
        return jsonl_records(path)
    delimiter, quoting = ("\t", csv.QUOTE_NONE) if fmt == "tsv" else (",", csv.QUOTE_MINIMAL)
    return _delimited_records(path, delimiter, quoting, wanted)


def _columns(text_columns: str | Sequence[str]) -> tuple[str, ...]:
    columns = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    if not 1 <= len(columns) <= 2 or not all(isinstance(c, str) and c for c in columns):
        raise InputError(f"text_columns={text_columns!r}: expected one or two column names")
    return columns


def read_tabular(
    path: str | os.PathLike,
    text_columns: str | Sequence[str],
    label_column: str | None = None,
    *,
    task: str = "classification",
    format: str | None = None,
    label_list: Sequence[str] | None = None,
    id_column: str | None = None,
    skip_bad_rows: bool = False,
) -> ExampleList:
    """Examples from a CSV/TSV/JSONL file; `label_column=None` reads unlabelled data (labels None).

    The result's `label_list` is the classification label vocabulary (given or discovered). A malformed row
    raises DataFormatError (an InputError) naming the file, line and column, unless `skip_bad_rows`: then it is
    left out, listed in `skipped` and summarised in one logged warning.
    """
    if task not in TASKS:
        raise InputError(f"task {task!r} is unknown; expected one of {', '.join(TASKS)}")
    columns = _columns(text_columns)
    path = require_file(Path(path), "data file")
    fmt = detect_format(path, format)
    known = None if label_list is None else tuple(str(label) for label in label_list)
    wanted = [*columns, *(c for c in (label_column, id_column) if c is not None)]
    examples, skipped = collect_examples(
        path, table_records(path, fmt, wanted),
        lambda line, record: _example(record, columns, label_column, id_column, task, known, line),
        skip_bad_rows, "no examples")
    if task == "classification" and label_column is not None and known is None:
        known = _discover_labels([str(example.label) for example in examples])
    return ExampleList(examples, skipped, known if task == "classification" else None)


def _example(record: Record, columns: tuple[str, ...], label_column: str | None, id_column: str | None,
             task: str, known: tuple[str, ...] | None, line: int) -> Example:
    if isinstance(record, BadRow):
        raise ValueError(record.reason)
    label: str | float | None = None
    if label_column is not None:
        raw = _raw_label(record, label_column)
        if task == "regression":
            label = _regression_label(raw, label_column)
        else:
            label = _class_label(raw, label_column)
            if known is not None and label not in known:
                raise ValueError(f"label {label!r} in field {label_column!r} is not one of {list(known)}")
    if id_column is not None and id_column not in record:
        raise ValueError(f"no id field {id_column!r}")
    guid = str(record[id_column]) if id_column is not None else f"line-{line}"
    return Example(guid=guid, text_a=string_field(record, columns[0]),
                   text_b=string_field(record, columns[1]) if len(columns) == 2 else None, label=label)
