"""`paddlefunnel train ner`, `evaluate ner`, `predict ner`: token classification on CoNLL or JSON-lines files.

The command groups (train.py, evaluate.py, predict.py) each add one of these sub-commands with `add_train`,
`add_evaluate`, `add_predict`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..data.conll import FORMATS
from ..data.synthetic_conll import write_synthetic_conll
from ..deploy import Predictor
from ..metrics.ner import SCHEMES
from ..tasks.token_classification import evaluate_ner, predict_ner, train_ner
from ..training import TrainingArguments
from .deploy import export_and_report
from .options import (add_batch_size, add_command, add_model_options, add_out_file, add_trained_model,
                      add_training_options, check_out_file, model_options, print_json, training_arguments)

# The demo's tiny Funnel (the shape of cli.demo.DEMO_MODEL, which is not imported: the demo imports this module).
DEMO_NER_MODEL = {"model_type": "funnel", "vocab_size": 1000, "block_sizes": [1, 1, 1], "d_model": 64, "n_head": 4,
                  "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}
DEMO_NER_MAX_SEQ_LENGTH = 32  # with the demo vocabulary a synthetic sentence is at most 29 pieces: one window


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tagged data")
    group.add_argument("--format", choices=FORMATS,
                       help="conll (token per line, blank line between sentences) or jsonl ({\"tokens\", \"tags\"}); "
                            "default: jsonl for .jsonl/.ndjson files, else conll")
    group.add_argument("--label-column", type=int,
                       help="CoNLL: the 0-based column of the tags (default: the last; column 0 is the token)")
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
    group = p.add_argument_group("tagged data")
    group.add_argument("--format", choices=FORMATS, help="input layout (default: from the extension)")
    group.add_argument("--label-column", type=int, help="CoNLL: the 0-based column of gold tags (default: the last)")
    add_batch_size(p, 64)


def run_predict(args: argparse.Namespace) -> int:
    print_json(predict_ner(args.file, args.model, args.output, args.format, args.label_column, args.output_format,
                           args.batch_size))
    return 0


# ------------------------------------------------------------------------------------------------- demo
def demo_ner(out_dir: Path, tokenizer_dir: Path, epochs: float = 4, n_train: int = 1000) -> dict:
    """The demo's named-entity step (shaped like `cli.demo.demo_glue`): synthetic CoNLL-2003-layout data, a tiny
    Funnel trained from scratch, evaluated with seqeval and used to tag the test file. Returns the dev metrics."""
    print("\n== named entities: synthetic CoNLL-2003-layout data (IOB1), tiny Funnel trained from scratch", flush=True)
    data_dir = write_synthetic_conll(out_dir / "ner_data", n_train=n_train, n_dev=200, n_test=200, seed=0)
    config_file = out_dir / "tiny_ner_config.json"
    config_file.write_text(json.dumps(DEMO_NER_MODEL, indent=2))
    run_dir = out_dir / "ner_run"
    args = TrainingArguments(output_dir=str(run_dir), learning_rate=2e-3, per_device_batch_size=32,
                             num_epochs=epochs, warmup_ratio=0.1, logging_steps=25, seed=0,
                             overwrite=True)  # a re-run of the demo starts its runs over
    start = time.perf_counter()
    summary = train_ner(str(data_dir / "train.txt"), str(data_dir / "dev.txt"), args, str(config_file),
                        tokenizer=str(tokenizer_dir), max_seq_length=DEMO_NER_MAX_SEQ_LENGTH, doc_stride=8,
                        init="random")
    print(f"trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s; best dev entity F1 "
          f"{summary['best_f1']:.2f} at step {summary['best_step']} (log: {run_dir / 'log.jsonl'})")
    metrics = evaluate_ner(str(data_dir / "dev.txt"), str(run_dir / "best"))
    per_type = ", ".join(f"{kind} {scores['f1']:.1f}" for kind, scores in metrics["per_type"].items())
    print(f"evaluate (best checkpoint, dev, {metrics['scheme']}): entity F1 {metrics['f1']:.2f} (per type: "
          f"{per_type}), token accuracy {metrics['accuracy']:.2f}")
    result = predict_ner(str(data_dir / "test.txt"), str(run_dir / "best"), str(out_dir / "ner_test_predictions.txt"))
    print(f"tagged {result['sentences']} test sentences -> {result['output']} (test entity F1 "
          f"{result['metrics']['f1']:.2f})")
    return metrics


def demo_ner_deploy(out_dir: Path) -> list[dict]:
    """The demo's deploy step for the tagger of `demo_ner`: export it, tag raw text through the Predictor and
    print each entity with its character offsets. Returns the Predictor's results."""
    print("\n== deploy the tagger: export, then entities with character offsets from raw text", flush=True)
    export_and_report(out_dir / "ner_run" / "best", out_dir / "export_ner", overwrite=True)
    texts = ["Mira Heron visited Port Ives, the capital of Avaria.", "The Bank of Cressia hired Tobin Crane.",
             "The national animal of Elvana is crane."]
    results = Predictor(out_dir / "export_ner").predict(texts)
    for text, result in zip(texts, results):
        shown = ", ".join(f"{e['entity']} {e['text']!r} [{e['start']}:{e['end']}] p={e['score']:.2f}"
                          for e in result["entities"])
        print(f"  {text!r} -> {shown or '(no entities)'}")
    return results
