"""Pieces shared by the readers: the example record, the skipped-row report, file helpers."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, MissingFileError
from ..io_utils import not_utf8_error

logger = logging.getLogger("paddlefunnel.data")


@dataclass(frozen=True)
class Example:
    """One text (pair) to classify or score. Test rows have `label=None` and the file's `index`."""

    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None
    index: int | None = None


@dataclass(frozen=True)
class SkippedRow:
    """A row left out because it was malformed (only with `skip_bad_rows=True`)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.reason}"


class ExampleList(list):
    """The examples read from one file, plus what the reader learned about it.

    `skipped` lists the rows dropped by `skip_bad_rows=True` (empty otherwise); `label_list` is the label
    vocabulary (label id i is `label_list[i]`), None for regression or unlabelled data.
    """

    def __init__(self, examples: Iterable[Example] = (), skipped: Iterable[SkippedRow] = (),
                 label_list: tuple[str, ...] | None = None) -> None:
        super().__init__(examples)
        self.skipped: list[SkippedRow] = list(skipped)
        self.label_list = label_list


def _report_skipped(path: str | os.PathLike, skipped: list[SkippedRow], total: int) -> None:
    """Log one warning summarising the rows `skip_bad_rows` dropped, so skipping is never silent."""
    if skipped:
        first = "; ".join(f"line {row.line}: {row.reason}" for row in skipped[:3])
        logger.warning("%s: skipped %d of %d rows (first: %s)", path, len(skipped), total, first)


def collect_examples(path: str | os.PathLike, numbered_rows: Iterable[tuple[int, Any]],
                     parse: Callable[[int, Any], Example], skip_bad_rows: bool,
                     empty_message: str) -> tuple[list[Example], list[SkippedRow]]:
    """Parse every (line, row); a row whose `parse` raises ValueError (its reason, without file or line) stops
    the read with a DataFormatError naming both, or, with `skip_bad_rows`, is left out and reported. A file that
    yields no example at all is an error."""
    examples: list[Example] = []
    skipped: list[SkippedRow] = []
    rows = 0
    for line, row in numbered_rows:
        rows += 1
        try:
            examples.append(parse(line, row))
        except ValueError as err:
            if not skip_bad_rows:
                raise DataFormatError(path, line, str(err)) from None
            skipped.append(SkippedRow(str(path), line, str(err)))
    _report_skipped(path, skipped, rows)
    if not examples:
        detail = f" (all {rows} rows were malformed)" if skipped else ""
        raise DataFormatError(path, None, f"{empty_message}{detail}")
    return examples, skipped


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist" if not path.exists()
                                else f"{what} {path} is not a file")
    return path


def decoding_error(path: str | os.PathLike, err: UnicodeDecodeError) -> DataFormatError:
    """The DataFormatError for a file that is not UTF-8, at the real line of its first bad byte.

    A text-mode reader decodes a whole buffer (8 KiB) ahead of the line it hands out, so neither the reader's
    line count nor `err.start` says where the byte is; the file is scanned again, in bytes, line by line."""
    found = not_utf8_error(path, err.reason)
    # None: the file changed under us; say what the decoder said
    return found or DataFormatError(path, None, f"not UTF-8 text ({err.reason})")


def load_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file of any top-level type; a syntax error names the file, line and column.

    Not `io_utils.read_json_object`: data files may start with a byte-order mark (utf-8-sig), and their
    errors are DataFormatErrors in the readers' "<file>, line N: ..." form."""
    path = require_file(Path(path), what)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise decoding_error(path, err) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON at column {err.colno} (character {err.pos}): "
                                                f"{err.msg}") from None
