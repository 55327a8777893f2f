"""`paddlefunnel train ner`, `evaluate ner`, `predict ner`: token classification on CoNLL or JSON-lines files.

The command groups (train.py, evaluate.py, predict.py) each add one of these sub-commands with `add_train`,
`add_evaluate`, `add_predict`.
"""

from __future__ import annotations

import argparse

from ..data.conll import FORMATS
from ..metrics.ner import SCHEMES
from ..tasks.token_classification import evaluate_ner, predict_ner, train_ner
from .options import (add_batch_size, add_command, add_model_options, add_out_file, add_trained_model,
                      add_training_options, check_out_file, model_options, print_json, training_arguments)


def _add_data_options(parser: argparse.ArgumentParser, skip_bad_rows: bool = True) -> None:
    """--format and --label-column (and, where the command can skip sentences, --skip-bad-rows)."""
    group = parser.add_argument_group("tagged data")
    group.add_argument("--format", choices=FORMATS,
                       help="conll (token per line, blank line between sentences) or jsonl ({\"tokens\", \"tags\"}); "
                            "default: jsonl for .jsonl/.ndjson files, else conll")
    group.add_argument("--label-column", type=int,
                       help="CoNLL: the 0-based column of the tags (default: the last; column 0 is the token)")
    if skip_bad_rows:
        group.add_argument("--skip-bad-rows", action="store_true",
                           help="skip malformed sentences (counted and reported) instead of stopping")


# ------------------------------------------------------------------------------------------------ train
def add_train(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "ner", run_train, "token classification / named entities (CoNLL or JSON lines)",
                    all_cores=True)
    p.add_argument("--train-file", required=True)
    p.add_argument("--dev-file", help="scored (entity F1, seqeval) at every evaluation; best checkpoint kept")
    _add_data_options(p)
    group = p.add_argument_group("tags and windows")
    group.add_argument("--scheme", choices=SCHEMES, help="tagging scheme (default: detected from the training tags)")
    group.add_argument("--label-all-pieces", action="store_true",
                       help="train every word piece on its word's tag (default: the first piece only)")
    group.add_argument("--doc-stride", type=int,
                       help="word pieces of overlap between the windows of a sentence longer than --max-seq-length "
                            "(default: a quarter of a window)")
    add_model_options(p)
    add_training_options(p)


def run_train(args: argparse.Namespace) -> int:
    print_json(train_ner(args.train_file, args.dev_file, training_arguments(args), args.model, format=args.format,
                         label_column=args.label_column, scheme=args.scheme, doc_stride=args.doc_stride,
                         label_all_pieces=args.label_all_pieces, skip_bad_rows=args.skip_bad_rows,
                         **model_options(args)))
    return 0


# --------------------------------------------------------------------------------------------- evaluate
def add_evaluate(benchmarks: argparse._SubParsersAction) -> None:
    p = add_command(benchmarks, "ner", run_evaluate,
                    "entity precision / recall / F1 (seqeval) and token accuracy of a trained tagger", all_cores=True)
    add_trained_model(p, "ner")
    p.add_argument("--file", required=True, help="tagged CoNLL or JSON-lines file")
    _add_data_options(p)
    add_batch_size(p, 64)
    add_out_file(p)


def run_evaluate(args: argparse.Namespace) -> int:
    check_out_file(args, args.file, args.model)
    print_json(evaluate_ner(args.file, args.model, args.format, args.label_column, args.batch_size,
                            args.skip_bad_rows), args.out_file)
    return 0


# ---------------------------------------------------------------------------------------------- predict
def add_predict(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "ner", run_predict, "tag a CoNLL or JSON-lines file (tags optional: then also scored)",
                    all_cores=True)
    add_trained_model(p, "ner")
    p.add_argument("--file", required=True, help="CoNLL (tokens in column 0) or JSON lines ({\"tokens\": [...]})")
    p.add_argument("--output", required=True,
                   help="predictions: CoNLL (token [gold] predicted) or, for .jsonl, JSON lines")
    p.add_argument("--output-format", choices=FORMATS, help="default: from --output's extension")
    _add_data_options(p, skip_bad_rows=False)  # predict_ner has no skipping: every input sentence is answered
    add_batch_size(p, 64)


def run_predict(args: argparse.Namespace) -> int:
    print_json(predict_ner(args.file, args.model, args.output, args.format, args.label_column, args.output_format,
                           args.batch_size))
    return 0
