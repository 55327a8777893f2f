"""`paddlefunnel evaluate squad | glue`: a benchmark's official metrics, printed as JSON."""

from __future__ import annotations

import argparse

from ..data.squad import load_squad_dataset_for_eval, read_na_probs, read_squad_predictions
from ..metrics.squad import squad_evaluate
from ..tasks.classification import evaluate_glue
from . import multiple_choice, ner
from .options import (add_batch_size, add_command, add_glue_data_options, add_out_file, add_trained_model,
                      check_out_file, print_json)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="score prediction files with a benchmark's official metrics",
                            allow_abbrev=False)
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    _add_squad(benchmarks)
    _add_glue(benchmarks)
    ner.add_evaluate(benchmarks)
    multiple_choice.add_evaluate(benchmarks)


def _add_squad(benchmarks: argparse._SubParsersAction) -> None:
    p = add_command(benchmarks, "squad", run_squad, "SQuAD v1.1 / v2.0, scored like the official evaluation scripts")
    p.add_argument("--data-file", required=True, help="the SQuAD JSON the predictions answer (e.g. dev-v2.0.json)")
    p.add_argument("--pred-file", required=True, help="JSON object: question id -> answer text ('' = no answer)")
    p.add_argument("--na-prob-file", help="JSON object: question id -> probability of no answer (v2.0)")
    p.add_argument("--na-prob-thresh", type=float, default=1.0,
                   help="predict no answer above this probability (default: 1.0, as the official script)")
    p.add_argument("--squad-version", choices=["auto", "1.1", "2.0"], default="auto",
                   help="scoring rules (default: auto, 2.0 if any question has is_impossible)")
    add_out_file(p)


def run_squad(args: argparse.Namespace) -> int:
    check_out_file(args, args.data_file, args.pred_file, args.na_prob_file)
    dataset = load_squad_dataset_for_eval(args.data_file)
    predictions = read_squad_predictions(args.pred_file)
    na_probs = read_na_probs(args.na_prob_file) if args.na_prob_file else None
    print_json(squad_evaluate(dataset, predictions, na_probs, args.na_prob_thresh, version=args.squad_version),
               args.out_file)
    return 0


def _add_glue(benchmarks: argparse._SubParsersAction) -> None:
    p = add_command(benchmarks, "glue", run_glue, "score a fine-tuned model on a GLUE split (default: dev)",
                    all_cores=True)
    add_glue_data_options(p)
    add_trained_model(p, "glue")
    p.add_argument("--split", help="default: dev (MNLI: dev_matched)")
    add_batch_size(p, 64)
    add_out_file(p)


def run_glue(args: argparse.Namespace) -> int:
    check_out_file(args, args.data_dir, args.model)
    print_json(evaluate_glue(args.task, args.data_dir, args.model, args.split, args.batch_size), args.out_file)
    return 0
