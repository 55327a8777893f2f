"""Read tagged sentences (named entities, chunks, parts of speech) for token classification.

Two layouts, chosen by `format=` or the file extension (.jsonl/.ndjson: JSON lines; anything else: CoNLL):
- CoNLL-2003: one token per line, columns separated by whitespace, a blank line between sentences, `-DOCSTART-`
  lines (document boundaries) skipped. The token is column 0; `label_column` picks the tag column (default: the
  last). Every token line must have as many columns as the file's first token line. A file whose lines hold a
  single column is unlabelled (the tokens alone, for prediction).
- JSON lines: `{"tokens": [...], "tags": [...]}` per line (`tags` may be absent in unlabelled data); an "id" is
  kept.

Every error names the file, the line and the column or field. The tag vocabulary comes from the training file
(`tag_label_list`: sorted, "O" first, so it does not depend on sentence order); dev and test files are read with
that list, and a tag outside it is an error (or, with `skip_bad_rows`, a skipped sentence).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError, InputError
from ._common import ExampleList, collect_examples, decoding_error, require_file
from .tabular import BadRow, jsonl_records

FORMATS = ("conll", "jsonl")
OUTSIDE = "O"
DOCSTART = "-DOCSTART-"
_JSONL_EXTENSIONS = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence: its words and (in labelled data) one tag per word; `line` is where it starts in its file."""

    guid: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    line: int | None = None


def detect_tagged_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The explicit `format`, else JSON lines for .jsonl/.ndjson and CoNLL for every other extension."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"format {format!r} is unknown; expected one of {', '.join(FORMATS)}")
        return format
    return "jsonl" if Path(path).suffix.lower() in _JSONL_EXTENSIONS else "conll"


def tag_label_list(tag_sequences: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """The tag vocabulary of training data: "O" first (label id 0, also when absent), the others sorted."""
    tags = {tag for tags in tag_sequences for tag in tags}
    return (OUTSIDE, *sorted(tags - {OUTSIDE}))


# ------------------------------------------------------------------------------------------------ CoNLL
def _conll_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, columns) of every line; blank lines give []."""
    with open(path, encoding="utf-8-sig") as handle:
        try:
            for number, text in enumerate(handle, start=1):
                yield number, text.split()
        except UnicodeDecodeError as err:
            raise decoding_error(path, err) from None


def _conll_blocks(path: Path) -> Iterator[list[tuple[int, list[str]]]]:
    """The token lines of each sentence; -DOCSTART- lines end a sentence and are dropped."""
    block: list[tuple[int, list[str]]] = []
    for number, columns in _conll_lines(path):
        if not columns or columns[0] == DOCSTART:
            if block:
                yield block
            block = []
            continue
        block.append((number, columns))
    if block:
        yield block


def _tag_column(path: Path, line: int, width: int, label_column: int | None, labelled: bool) -> int | None:
    """The 0-based tag column of a file whose first token line (`line`) holds `width` columns; None: the file
    is unlabelled (a single column), which only prediction accepts."""
    if label_column is None:
        if width == 1 and labelled:
            raise DataFormatError(path, line, "a single column (the token); expected a tag column for training or "
                                              "evaluation")
        return width - 1 if width > 1 else None
    if not 1 <= label_column < width:
        raise DataFormatError(path, line, f"label column {label_column} does not exist: the token lines have "
                                          f"{width} columns (0 = the token, tags in 1..{width - 1})")
    return label_column


def _conll_sentences(path: Path, label_column: int | None, known: tuple[str, ...] | None,
                     labelled: bool) -> Iterator[tuple[int, TaggedSentence | BadRow]]:
    """(line, sentence) per sentence, or (the first bad line, BadRow) for one that breaks the rules."""
    width: int | None = None
    tag_at: int | None = None
    for block in _conll_blocks(path):
        first_line = block[0][0]
        if width is None:
            width = len(block[0][1])
            tag_at = _tag_column(path, first_line, width, label_column, labelled)
        bad = next(((n, cols) for n, cols in block if len(cols) != width), None)
        if bad is not None:
            yield bad[0], BadRow(f"{len(bad[1])} columns, but the file's first token line has {width}; expected "
                               "whitespace-separated columns: token ... tag")
            continue
        tokens = tuple(cols[0] for _, cols in block)
        tags = None if tag_at is None else tuple(cols[tag_at] for _, cols in block)
        unknown = _unknown_tag(tags, known)
        if unknown is not None:
            number = block[unknown][0]
            yield number, BadRow(f"tag {tags[unknown]!r} in column {tag_at} is not one of the training tags "
                               f"{list(known)}")
            continue
        yield first_line, TaggedSentence(f"line-{first_line}", tokens, tags, first_line)


def _unknown_tag(tags: Sequence[str] | None, known: tuple[str, ...] | None) -> int | None:
    """Index of the first tag outside `known` (None: all known, or nothing to check)."""
    if tags is None or known is None:
        return None
    allowed = set(known)
    return next((i for i, tag in enumerate(tags) if tag not in allowed), None)


# ------------------------------------------------------------------------------------------ JSON lines
def _string_list(record: dict, key: str) -> tuple[str, ...]:
    value = record[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"field {key!r} must be a list of strings, got {json.dumps(value)[:80]}")
    blank = next((i for i, item in enumerate(value) if not item.strip()), None)
    if blank is not None:
        raise ValueError(f"field {key!r}[{blank}] is empty or blank; expected a word or tag")
    return tuple(value)


def _jsonl_sentence(record: dict, line: int, known: tuple[str, ...] | None, labelled: bool) -> TaggedSentence:
    if "tokens" not in record:
        raise ValueError("no field 'tokens'")
    tokens = _string_list(record, "tokens")
    if not tokens:
        raise ValueError("field 'tokens' is empty: expected a sentence of at least one token")
    tags = None
    if "tags" in record:
        tags = _string_list(record, "tags")
        if len(tags) != len(tokens):
            raise ValueError(f"field 'tags' has {len(tags)} entries but 'tokens' has {len(tokens)}; expected one "
                             "tag per token")
        unknown = _unknown_tag(tags, known)
        if unknown is not None:
            raise ValueError(f"field 'tags'[{unknown}] = {tags[unknown]!r} is not one of the training tags "
                             f"{list(known)}")
    elif labelled:
        raise ValueError("no field 'tags'")
    guid = str(record["id"]) if "id" in record else f"line-{line}"
    return TaggedSentence(guid, tokens, tags, line)


def _jsonl_sentences(path: Path, known: tuple[str, ...] | None,
                     labelled: bool) -> Iterator[tuple[int, TaggedSentence | BadRow]]:
    for line, record in jsonl_records(path):
        if isinstance(record, BadRow):
            yield line, record
            continue
        try:
            yield line, _jsonl_sentence(record, line, known, labelled)
        except ValueError as err:
            yield line, BadRow(str(err))


# ---------------------------------------------------------------------------------------------- reader
def _parse(line: int, item: TaggedSentence | BadRow) -> TaggedSentence:
    if isinstance(item, BadRow):
        raise ValueError(item.reason)
    return item


def read_tagged(path: str | os.PathLike, *, format: str | None = None, label_column: int | None = None,
                label_list: Sequence[str] | None = None, labelled: bool = True,
                skip_bad_rows: bool = False) -> ExampleList:
    """Tagged sentences from a CoNLL or JSON-lines file, as an ExampleList of `TaggedSentence`.

    `label_list`: the training tags (dev/test files); without it the list is discovered (`tag_label_list`).
    `labelled=False` also accepts sentences without tags (prediction input). A malformed sentence raises
    DataFormatError naming the file, line and column/field, unless `skip_bad_rows`: then it is left out, listed
    in `skipped` and summarised in one logged warning.
    """
    path = require_file(Path(path), "data file")
    fmt = detect_tagged_format(path, format)
    if label_column is not None and fmt == "jsonl":
        raise InputError("--label-column is for CoNLL files; JSON lines name their tags 'tags'")
    if label_column is not None and label_column < 1:
        raise InputError(f"label column {label_column}: expected 1 or more (column 0 is the token)")
    known = None if label_list is None else tuple(label_list)
    items = (_jsonl_sentences(path, known, labelled) if fmt == "jsonl"
             else _conll_sentences(path, label_column, known, labelled))
    sentences, skipped = collect_examples(path, items, _parse, skip_bad_rows, "no sentences")
    tagged = [s.tags for s in sentences if s.tags is not None]
    if known is None and tagged:
        known = tag_label_list(tagged)
    return ExampleList(sentences, skipped, known)


def read_conll(path: str | os.PathLike, label_column: int | None = None, **options) -> ExampleList:
    """`read_tagged` for a CoNLL-layout file."""
    return read_tagged(path, format="conll", label_column=label_column, **options)
