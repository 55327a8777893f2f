"""`paddlefunnel train | evaluate | predict multiple-choice`: RACE (official layout) or your own tables.

The data options are declared once here and shared by the three commands: `--data-format race` reads
`--data-dir` (RACE's train/dev/test folders), `--data-format table` reads CSV / TSV / JSON-lines files with the
column options. A model trained on a table remembers its columns (task.json), so evaluate / predict need only
the file.
"""

from __future__ import annotations

import argparse

from ..data.multiple_choice import ChoiceColumns, read_choice_table, read_race
from ..errors import InputError
from ..io_utils import check_output_file
from ..tasks.multiple_choice import (DATA_FORMATS, evaluate_multiple_choice, predict_multiple_choice,
                                     read_choice_settings, train_choice_table, train_race)
from .options import (add_batch_size, add_command, add_model_options, add_out_file, add_trained_model,
                      add_training_options, check_out_file, model_options, print_json, training_arguments)

COMMAND = "multiple-choice"


# ------------------------------------------------------------------------------------------- data options
def _add_data_options(parser: argparse.ArgumentParser, training: bool) -> None:
    group = parser.add_argument_group("data (--data-format race: --data-dir; table: files and columns)")
    group.add_argument("--data-format", choices=DATA_FORMATS, default=None if not training else "race",
                       help="race: RACE's official layout; table: CSV / TSV / JSON lines "
                            + ("(default: race)" if training else "(default: the format the model was trained on)"))
    group.add_argument("--data-dir", help="RACE root: <data-dir>/{train,dev,test}/{middle,high}/*.txt")
    if training:
        group.add_argument("--train-file", help="table: training data")
        group.add_argument("--dev-file", help="table: dev data, scored at every evaluation")
    else:
        group.add_argument("--split", choices=["train", "dev", "test"],
                           help="RACE split (default: dev to evaluate, test to predict)")
        group.add_argument("--data-file", help="table: the file to evaluate / predict")
    group.add_argument("--context-column", help="table: the passage / context column")
    group.add_argument("--question-column", help="table: the question column (optional)")
    group.add_argument("--choice-columns", help="table: a,b,c,d (one per choice) or one list-valued JSONL field")
    group.add_argument("--label-column", help="table: the right choice, as its index (0-based) or its text")
    group.add_argument("--id-column", help="table: an id to copy into the predictions (default: line-N)")
    group.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="table: default from the file extension")
    group.add_argument("--skip-bad-rows", action="store_true", help="skip malformed questions (counted, reported)")


def choice_columns(args: argparse.Namespace, saved: dict | None = None, need_label: bool = True) -> ChoiceColumns:
    """The table's columns from the flags, else (evaluate / predict) from the settings saved with the model."""
    saved = saved or {}
    context = args.context_column or saved.get("context_column")
    choices = args.choice_columns.split(",") if args.choice_columns else saved.get("choice_columns")
    if not context or not choices:
        raise InputError("--data-format table needs --context-column and --choice-columns")
    choices = tuple(c.strip() for c in choices if c.strip())
    label = args.label_column or (saved.get("label_column") if need_label else None)
    question = args.question_column or saved.get("question_column")
    return ChoiceColumns(context, choices, question, label, args.id_column or saved.get("id_column"))


def _refuse(args: argparse.Namespace, names: tuple[str, ...], data_format: str) -> None:
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name, None)]
    if given:
        raise InputError(f"{', '.join(given)}: not used with --data-format {data_format}")


_TABLE_ONLY = ("train_file", "dev_file", "data_file", "context_column", "question_column", "choice_columns",
               "label_column", "id_column", "format")


# -------------------------------------------------------------------------------------------------- train
def add_train(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, COMMAND, run_train, "multiple choice: RACE or your own CSV / TSV / JSON-lines tables",
                    all_cores=True)
    _add_data_options(p, training=True)
    add_model_options(p, max_seq_length=None)
    p.add_argument("--max-seq-length", type=int, help="tokens per choice (default: 512 for RACE, 128 for tables)")
    p.add_argument("--max-qa-length", type=int,
                   help="tokens of question + choice, the context gets the rest (default: 128 for RACE, 64 for "
                        "tables; at most half of --max-seq-length)")
    add_training_options(p)


def run_train(args: argparse.Namespace) -> int:
    training = training_arguments(args)  # first: a recipe's "_task_options" fill --max-seq-length / --max-qa-length
    options = {**model_options(args), "max_qa_length": args.max_qa_length}
    if args.data_format == "race":
        _refuse(args, _TABLE_ONLY, "race")
        if not args.data_dir:
            raise InputError("--data-format race needs --data-dir")
        summary = train_race(args.data_dir, training, args.model, args.skip_bad_rows, **options)
    else:
        _refuse(args, ("data_dir",), "table")
        if not args.train_file:
            raise InputError("--data-format table needs --train-file (and usually --dev-file)")
        columns = choice_columns(args)
        if columns.label_column is None:
            raise InputError("training on a table needs --label-column")
        summary = train_choice_table(args.train_file, args.dev_file, columns, training, args.model, args.format,
                                    args.skip_bad_rows, **options)
    print_json(summary)
    return 0


# ------------------------------------------------------------------------------------ evaluate, predict
def read_examples(args: argparse.Namespace, default_split: str, need_label: bool):
    """The examples the evaluate / predict flags name, in the model's data format unless --data-format says."""
    saved = read_choice_settings(args.model)
    data_format = args.data_format or saved.get("data_format") or "race"
    if data_format == "race":
        _refuse(args, _TABLE_ONLY, "race")
        if not args.data_dir:
            raise InputError("--data-format race needs --data-dir")
        return read_race(args.data_dir, args.split or default_split, skip_bad_rows=args.skip_bad_rows)
    _refuse(args, ("data_dir", "split"), "table")
    if not args.data_file:
        raise InputError("--data-format table needs --data-file")
    columns = choice_columns(args, saved.get("columns"), need_label)
    return read_choice_table(args.data_file, columns, format=args.format, skip_bad_rows=args.skip_bad_rows)


def add_evaluate(benchmarks: argparse._SubParsersAction) -> None:
    p = add_command(benchmarks, COMMAND, run_evaluate, "accuracy of a multiple-choice model (RACE: also per subset)",
                    all_cores=True)
    add_trained_model(p, COMMAND)
    _add_data_options(p, training=False)
    add_batch_size(p, 64)
    add_out_file(p)


def run_evaluate(args: argparse.Namespace) -> int:
    check_out_file(args, args.data_dir, args.data_file, args.model)
    examples = read_examples(args, "dev", need_label=True)
    result = evaluate_multiple_choice(examples, args.model, args.batch_size)
    result["skipped"] = len(examples.skipped)
    print_json(result, args.out_file)
    return 0


def add_predict(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, COMMAND, run_predict, "choices for RACE files or a table (JSON lines out)",
                    all_cores=True)
    add_trained_model(p, COMMAND)
    _add_data_options(p, training=False)
    p.add_argument("--output", required=True,
                   help='JSON lines: {"id", "label" (choice index), "answer" (letter), "probabilities"}')
    add_batch_size(p, 64)


def run_predict(args: argparse.Namespace) -> int:
    check_output_file(args.output, what="predictions file", inputs=(args.data_dir, args.data_file, args.model))
    examples = read_examples(args, "test", need_label=False)
    summary = predict_multiple_choice(examples, args.model, args.output, args.batch_size)
    summary["skipped"] = len(examples.skipped)
    print_json(summary)
    return 0
