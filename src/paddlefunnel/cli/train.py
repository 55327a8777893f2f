"""`paddlefunnel train glue | classify | squad`: fine-tune (or train from scratch) and print the run's summary."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..tasks.classification import train_glue, train_user_classifier
from ..tasks.squad import train_squad
from . import multiple_choice, ner
from .options import (add_command, add_glue_data_options, add_model_options, add_squad_options,
                      add_training_options, model_options, print_json, squad_settings, training_arguments)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="fine-tune (or train from scratch) on a task", allow_abbrev=False)
    tasks = parser.add_subparsers(dest="train_task", required=True, metavar="TASK")
    _add_glue(tasks)
    _add_classify(tasks)
    _add_squad(tasks)
    ner.add_train(tasks)
    multiple_choice.add_train(tasks)


def _add_glue(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "glue", run_glue, "a GLUE task from the official directory layout", all_cores=True)
    add_glue_data_options(p)
    p.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (counted and reported)")
    add_model_options(p)
    add_training_options(p)


def run_glue(args: argparse.Namespace) -> int:
    print_json(train_glue(args.task, args.data_dir, training_arguments(args), args.model,
                          skip_bad_rows=args.skip_bad_rows, **model_options(args)))
    return 0


def _add_classify(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "classify", run_classify, "your own CSV / TSV / JSON-lines data", all_cores=True)
    p.add_argument("--train-file", required=True)
    p.add_argument("--dev-file")
    p.add_argument("--text-columns", required=True, help="one or two column names: a[,b]")
    p.add_argument("--label-column", required=True)
    p.add_argument("--regression", action="store_true", help="numeric labels, one output")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="default: from the file extension")
    p.add_argument("--skip-bad-rows", action="store_true")
    add_model_options(p)
    add_training_options(p)


def text_columns(value: str) -> list[str]:
    """`--text-columns a[,b]` -> one or two column names."""
    columns = [c.strip() for c in value.split(",") if c.strip()]
    if not 1 <= len(columns) <= 2:
        raise InputError(f"--text-columns takes one or two names, got {value!r}")
    return columns


def run_classify(args: argparse.Namespace) -> int:
    print_json(train_user_classifier(args.train_file, args.dev_file, text_columns(args.text_columns),
                                     args.label_column, training_arguments(args), args.model,
                                     regression=args.regression, file_format=args.format,
                                     skip_bad_rows=args.skip_bad_rows, **model_options(args)))
    return 0


def _add_squad(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "squad", run_squad, "SQuAD v1.1 / v2.0 question answering (official JSON files)",
                    all_cores=True)
    p.add_argument("--train-file", required=True)
    p.add_argument("--dev-file", help="scored with the official metrics at every evaluation")
    add_model_options(p, max_seq_length=None)  # SQuAD's --max-seq-length is a window option
    add_squad_options(p, training=True)
    add_training_options(p)


def run_squad(args: argparse.Namespace) -> int:
    print_json(train_squad(args.train_file, args.dev_file, training_arguments(args), args.model,
                           squad_settings(args), tokenizer=args.tokenizer, train_vocab=args.train_vocab,
                           ignore_mismatched_sizes=args.ignore_mismatched_sizes, init=args.init,
                           revision=args.revision))
    return 0
