"""Read the GLUE benchmark's TSV files into `Example`s and write the GLUE server's submission files.

Layout expected (as the official download script leaves it): `<data_dir>/<TASK>/<split>.tsv` with the task
directories CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI, and `diagnostic/diagnostic.tsv` (or
`diagnostic/AX.tsv`) for AX. MNLI's splits are train, dev_matched, dev_mismatched, test_matched, test_mismatched;
AX has only test; every other task has train, dev, test.

The files are not quoted (sentences contain unbalanced quotes), so they are read with csv.QUOTE_NONE: one line,
one row. Headers are checked against the column names we rely on, so a file from another task is caught.
Classification labels stay the strings of the files; `GlueTaskSpec.labels` maps them to ids.

`GLUE_TASKS` is the one table of the tasks' facts (files, labels, regression or not, which metrics GLUE reports)
and `find_glue_task` the one reading of a task's name; `paddlefunnel.metrics.glue` computes from both.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, InputError, MissingFileError
from ..io_utils import atomic_write_text
from ._common import Example, ExampleList, collect_examples, decoding_error

# What GLUE reports for a task (names as in the GLUE paper and transformers' run_glue; computed by
# paddlefunnel.metrics.glue). The last name is the task's GLUE score: checkpoints are selected by it.
MCC = ("mcc",)  # Matthews correlation: CoLA, and AX (the diagnostic set)
ACCURACY = ("acc",)
ACCURACY_F1 = ("acc", "f1", "acc_and_f1")  # F1 of class 1 (paraphrase / duplicate) and the mean: MRPC, QQP
CORRELATION = ("pearson", "spearmanr", "corr")  # Pearson, Spearman and their mean: STS-B


@dataclass(frozen=True)
class SplitLayout:
    """Where one split's file keeps its fields (0-based columns) and what its header calls them."""

    file_names: tuple[str, ...]  # first one that exists is read
    num_columns: int
    text_a: int
    text_b: int | None = None
    label: int | None = None
    index: int | None = None
    header: dict[int, str] | None = None  # None: the file has no header row (CoLA train/dev)


@dataclass(frozen=True)
class GlueTaskSpec:
    """Everything the reader, the submission writer and the metrics need to know about one GLUE task."""

    name: str
    directory: str
    labels: tuple[str, ...] | None  # None: regression (STS-B)
    splits: dict[str, SplitLayout]
    submission: dict[str, str]  # test split -> file name on the GLUE server
    metrics: tuple[str, ...]  # MCC, ACCURACY, ACCURACY_F1 or CORRELATION
    label_range: tuple[float, float] | None = None  # regression only

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def main_metric(self) -> str:
        """The metric GLUE averages into its score for this task."""
        return self.metrics[-1]

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def label_id(self, label: str) -> int:
        if self.labels is None or label not in self.labels:
            raise InputError(f"{self.name}: label {label!r} is not one of {list(self.labels or ())}")
        return self.labels.index(label)


def _headed(names: Sequence[str], text_a: str, text_b: str | None, label: str | None, index: str | None,
            file_name: str) -> SplitLayout:
    """A layout for a file with a header row `names`; columns are found by name."""
    used = [n for n in (text_a, text_b, label, index) if n is not None]
    return SplitLayout(
        file_names=(file_name,),
        num_columns=len(names),
        text_a=names.index(text_a),
        text_b=None if text_b is None else names.index(text_b),
        label=None if label is None else names.index(label),
        index=None if index is None else names.index(index),
        header={names.index(n): n for n in used},
    )


def _pair_task(name: str, labels: tuple[str, ...], a: str, b: str) -> GlueTaskSpec:
    """QNLI, RTE, WNLI: `index, <a>, <b>, label` in train/dev and `index, <a>, <b>` in test; scored by accuracy."""
    return GlueTaskSpec(name, name, labels, {
        "train": _headed(["index", a, b, "label"], a, b, "label", None, "train.tsv"),
        "dev": _headed(["index", a, b, "label"], a, b, "label", None, "dev.tsv"),
        "test": _headed(["index", a, b], a, b, None, "index", "test.tsv"),
    }, {"test": f"{name}.tsv"}, ACCURACY)


_BINARY = ("0", "1")
_NLI = ("contradiction", "entailment", "neutral")  # BERT / transformers order
_ENTAIL = ("entailment", "not_entailment")
_MRPC = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
_MRPC_TEST = ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]
_STSB = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
_QQP = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
_MNLI = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
_MNLI_DEV = [*_MNLI, "label1", "label2", "label3", "label4", "label5", "gold_label"]


def _mnli_splits() -> dict[str, SplitLayout]:
    splits = {"train": _headed([*_MNLI, "label1", "gold_label"], "sentence1", "sentence2", "gold_label", None,
                               "train.tsv")}
    for kind in ("matched", "mismatched"):
        splits[f"dev_{kind}"] = _headed(_MNLI_DEV, "sentence1", "sentence2", "gold_label", None,
                                        f"dev_{kind}.tsv")
        splits[f"test_{kind}"] = _headed(_MNLI, "sentence1", "sentence2", None, "index", f"test_{kind}.tsv")
    return splits


GLUE_TASKS: dict[str, GlueTaskSpec] = {
    spec.name: spec
    for spec in (
        GlueTaskSpec("CoLA", "CoLA", _BINARY, {
            # No header; columns: source, label, original judgement ('*' or empty), sentence.
            "train": SplitLayout(("train.tsv",), 4, text_a=3, label=1),
            "dev": SplitLayout(("dev.tsv",), 4, text_a=3, label=1),
            "test": _headed(["index", "sentence"], "sentence", None, None, "index", "test.tsv"),
        }, {"test": "CoLA.tsv"}, MCC),
        GlueTaskSpec("SST-2", "SST-2", _BINARY, {
            "train": _headed(["sentence", "label"], "sentence", None, "label", None, "train.tsv"),
            "dev": _headed(["sentence", "label"], "sentence", None, "label", None, "dev.tsv"),
            "test": _headed(["index", "sentence"], "sentence", None, None, "index", "test.tsv"),
        }, {"test": "SST-2.tsv"}, ACCURACY),
        GlueTaskSpec("MRPC", "MRPC", _BINARY, {
            "train": _headed(_MRPC, "#1 String", "#2 String", "Quality", None, "train.tsv"),
            "dev": _headed(_MRPC, "#1 String", "#2 String", "Quality", None, "dev.tsv"),
            "test": _headed(_MRPC_TEST, "#1 String", "#2 String", None, "index", "test.tsv"),
        }, {"test": "MRPC.tsv"}, ACCURACY_F1),
        GlueTaskSpec("STS-B", "STS-B", None, {
            "train": _headed([*_STSB, "score"], "sentence1", "sentence2", "score", None, "train.tsv"),
            "dev": _headed([*_STSB, "score"], "sentence1", "sentence2", "score", None, "dev.tsv"),
            "test": _headed(_STSB, "sentence1", "sentence2", None, "index", "test.tsv"),
        }, {"test": "STS-B.tsv"}, CORRELATION, label_range=(0.0, 5.0)),
        GlueTaskSpec("QQP", "QQP", _BINARY, {
            "train": _headed(_QQP, "question1", "question2", "is_duplicate", None, "train.tsv"),
            "dev": _headed(_QQP, "question1", "question2", "is_duplicate", None, "dev.tsv"),
            "test": _headed(["id", "question1", "question2"], "question1", "question2", None, "id", "test.tsv"),
        }, {"test": "QQP.tsv"}, ACCURACY_F1),
        GlueTaskSpec("MNLI", "MNLI", _NLI, _mnli_splits(),
                     {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}, ACCURACY),
        _pair_task("QNLI", _ENTAIL, "question", "sentence"),
        _pair_task("RTE", _ENTAIL, "sentence1", "sentence2"),
        _pair_task("WNLI", _BINARY, "sentence1", "sentence2"),
        GlueTaskSpec("AX", "diagnostic", _NLI, {
            "test": SplitLayout(("diagnostic.tsv", "AX.tsv"), 3, text_a=1, text_b=2, index=0,
                                header={0: "index", 1: "sentence1", 2: "sentence2"}),
        }, {"test": "AX.tsv"}, MCC),
    )
}
GLUE_SUBMISSION_FILES: tuple[str, ...] = tuple(n for spec in GLUE_TASKS.values() for n in spec.submission.values())


# Other names (squashed: lower case, no '-' or '_') -> (task, test split). 'MNLI-m' and 'MNLI-mm' name MNLI's
# matched and mismatched sets, which GLUE scores and submits apart.
_ALIASES: dict[str, tuple[str, str | None]] = {
    "diagnostic": ("AX", None),
    "mnlim": ("MNLI", "test_matched"),
    "mnlimatched": ("MNLI", "test_matched"),
    "mnlimm": ("MNLI", "test_mismatched"),
    "mnlimismatched": ("MNLI", "test_mismatched"),
}


def _squash(name: str) -> str:
    return str(name).strip().lower().replace("-", "").replace("_", "")


def find_glue_task(task: str) -> tuple[GlueTaskSpec, str | None]:
    """The spec `task` names, case-insensitively with or without dashes ('sst2', 'SST-2', 'ax', 'diagnostic'),
    and the test split when the name picks one of MNLI's two sets ('MNLI-m', 'mnli_mismatched', ...)."""
    squashed = _squash(task)
    if squashed in _ALIASES:
        name, split = _ALIASES[squashed]
        return GLUE_TASKS[name], split
    for name, spec in GLUE_TASKS.items():
        if _squash(name) == squashed:
            return spec, None
    raise _unknown_task(task)


def _unknown_task(task: str) -> InputError:
    return InputError(f"unknown GLUE task {task!r}; expected one of {', '.join(GLUE_TASKS)}")


def glue_task(task: str) -> GlueTaskSpec:
    """The spec of `task` (see `find_glue_task`). The names of MNLI's single sets are refused here: reading
    and training take 'MNLI' and a split, so 'MNLI-mm' cannot quietly mean the matched dev set."""
    spec, split = find_glue_task(task)
    if split is not None:
        raise _unknown_task(task)
    return spec


# ------------------------------------------------------------------------------------------------ reading
def _split_file(data_dir: str | os.PathLike, spec: GlueTaskSpec, split: str) -> tuple[Path, SplitLayout]:
    if split not in spec.splits:
        raise InputError(f"{spec.name} has no split {split!r}; expected one of {', '.join(spec.splits)}")
    layout = spec.splits[split]
    root = Path(data_dir)
    if not root.is_dir():
        raise MissingFileError(f"GLUE data directory {root} does not exist")
    task_dir = root / spec.directory
    if not task_dir.is_dir():
        raise MissingFileError(f"GLUE task directory {task_dir} does not exist (expected "
                                f"<data_dir>/{spec.directory}/ holding {spec.name}'s files)")
    for name in layout.file_names:
        if (task_dir / name).is_file():
            return task_dir / name, layout
    raise MissingFileError(f"{spec.name} {split} file {task_dir / layout.file_names[0]} does not exist")


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank line; GLUE files are unquoted, so one line is one row."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except UnicodeDecodeError as err:
            raise decoding_error(path, err) from None


def _check_header(path: Path, line: int, row: list[str], layout: SplitLayout, spec: GlueTaskSpec,
                  split: str) -> None:
    assert layout.header is not None
    names = [name.strip().lower() for name in row]
    wrong = [(i, n) for i, n in layout.header.items() if i >= len(names) or names[i] != n.lower()]
    if len(row) != layout.num_columns or wrong:
        expected = ", ".join(f"column {i + 1} = {n!r}" for i, n in sorted(layout.header.items()))
        raise DataFormatError(path, line, f"header {row!r} is not that of {spec.name} {split}: expected "
                                          f"{layout.num_columns} tab-separated columns with {expected}")


def _parse_label(value: str, spec: GlueTaskSpec) -> str | float:
    if spec.labels is not None:
        if value not in spec.labels:
            raise ValueError(f"label {value!r} is not one of {spec.name}'s labels {list(spec.labels)}")
        return value
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"label {value!r} is not a number ({spec.name} is a regression task)") from None
    low, high = spec.label_range or (-math.inf, math.inf)
    if not low <= score <= high:
        raise ValueError(f"label {value!r} is outside {spec.name}'s range [{low}, {high}]")
    return score


def _parse_row(row: list[str], layout: SplitLayout, spec: GlueTaskSpec, guid: str) -> Example:
    if len(row) != layout.num_columns:
        raise ValueError(f"expected {layout.num_columns} tab-separated columns, found {len(row)}")
    index = None
    if layout.index is not None:
        try:
            index = int(row[layout.index])
        except ValueError:
            raise ValueError(f"index {row[layout.index]!r} in column {layout.index + 1} is not an integer") from None
    return Example(
        guid=guid,
        text_a=row[layout.text_a],
        text_b=None if layout.text_b is None else row[layout.text_b],
        label=None if layout.label is None else _parse_label(row[layout.label], spec),
        index=index,
    )


def read_glue(data_dir: str | os.PathLike, task: str, split: str, skip_bad_rows: bool = False) -> ExampleList:
    """The examples of one GLUE split, in file order.

    A malformed row (wrong column count, bad label or index) raises DataFormatError (an InputError) naming the
    file, line and what was expected, unless `skip_bad_rows`: then it is left out, listed in the result's
    `skipped` and summarised in one logged warning. The result's `label_list` is the task's label vocabulary.
    """
    spec = glue_task(task)
    path, layout = _split_file(data_dir, spec, split)
    examples, skipped = collect_examples(
        path, _data_rows(path, layout, spec, split),
        lambda line, row: _parse_row(row, layout, spec, guid=f"{spec.name}-{split}-{line}"),
        skip_bad_rows, f"{spec.name} {split} holds no examples")
    return ExampleList(examples, skipped, spec.labels)


def _data_rows(path: Path, layout: SplitLayout, spec: GlueTaskSpec, split: str) -> Iterator[tuple[int, list[str]]]:
    """(line, row) of every data row; the header, where the layout has one, is checked and left out."""
    for line, row in _rows(path):
        if layout.header is not None and line == 1:
            _check_header(path, line, row, layout, spec, split)
            continue
        yield line, row


# ------------------------------------------------------------------------------------------- submission
def _submission_name(spec: GlueTaskSpec, split: str | None) -> str:
    if split is None:
        if len(spec.submission) != 1:
            raise InputError(f"{spec.name} has several test sets; pass split= one of {', '.join(spec.submission)} "
                             "(or task 'MNLI-m' / 'MNLI-mm')")
        return next(iter(spec.submission.values()))
    if split not in spec.submission:
        raise InputError(f"{spec.name} split {split!r} is not submitted to the GLUE server; expected one of "
                         f"{', '.join(spec.submission)}")
    return spec.submission[split]


def _format_prediction(value: Any, spec: GlueTaskSpec, position: int) -> str:
    if spec.labels is None:
        try:
            if isinstance(value, (bool, str)):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"predictions[{position}] = {value!r}: expected a number for {spec.name}") from None
        if not math.isfinite(number):
            raise InputError(f"predictions[{position}] = {value!r}: expected a finite number")
        return repr(number)
    if isinstance(value, str):
        if value not in spec.labels:
            raise InputError(f"predictions[{position}] = {value!r} is not one of {list(spec.labels)}")
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"predictions[{position}] = {value!r}: expected a label id or one of "
                         f"{list(spec.labels)}")
    if not 0 <= int(value) < len(spec.labels):
        raise InputError(f"predictions[{position}] = {value!r}: label id out of range 0..{len(spec.labels) - 1}")
    return spec.labels[int(value)]


def write_glue_predictions(out_dir: str | os.PathLike, task: str, indices: Sequence[int],
                           predictions: Sequence[Any], split: str | None = None) -> Path:
    """Write `<out_dir>/<server file name>` (e.g. SST-2.tsv, MNLI-mm.tsv) as `index<TAB>prediction` rows.

    Classification predictions are label ids or label strings and are written as the label strings; STS-B
    predictions are numbers. MNLI needs `split` ('test_matched' / 'test_mismatched') or the task names
    'MNLI-m' / 'MNLI-mm'. The file appears whole or not at all.
    """
    spec, named_split = find_glue_task(task)
    name = _submission_name(spec, named_split or split)
    if len(indices) != len(predictions):
        raise InputError(f"{len(indices)} indices but {len(predictions)} predictions; expected one per test row")
    if len(indices) == 0:
        raise InputError("no predictions to write")
    lines = ["index\tprediction"]
    seen: set[int] = set()
    for position, (index, value) in enumerate(zip(indices, predictions)):
        if isinstance(index, bool) or not hasattr(index, "__index__"):
            raise InputError(f"indices[{position}] = {index!r}: expected an integer test-row index")
        if int(index) in seen:
            raise InputError(f"indices[{position}] = {index!r} occurs twice")
        seen.add(int(index))
        lines.append(f"{int(index)}\t{_format_prediction(value, spec, position)}")
    target = Path(out_dir) / name
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target
