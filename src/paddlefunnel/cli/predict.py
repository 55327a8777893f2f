"""`paddlefunnel predict`: raw text through an exported model, or `predict glue | squad` for benchmark files.

Both live under one command: the raw-text options belong to `predict` itself, the benchmark files are its TASKs.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..deploy import Predictor, predict_jsonl
from ..errors import InputError
from ..io_utils import check_output_file
from ..tasks.classification import predict_glue
from ..tasks.squad import predict_squad
from . import multiple_choice, ner
from .options import (add_batch_size, add_command, add_glue_data_options, add_squad_options, add_trained_model,
                      print_json, squad_answer_options)


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "predict", run_text, "predictions from a trained model", all_cores=True)
    _add_text_options(parser)
    tasks = parser.add_subparsers(dest="predict_task", required=False, metavar="TASK")
    _add_glue(tasks)
    _add_squad(tasks)
    ner.add_predict(tasks)
    multiple_choice.add_predict(tasks)


# ------------------------------------------------------------------------------------------------- raw text
def _add_text_options(parser: argparse.ArgumentParser) -> None:
    """`predict --model EXPORT_DIR --text ... | --input FILE.jsonl`: raw text through the Predictor."""
    group = parser.add_argument_group("raw text (an exported model: `paddlefunnel export`)")
    group.add_argument("--model", help="export directory (classification or question answering model)")
    group.add_argument("--text", help="a text (question answering: the question)")
    group.add_argument("--text-pair", help="second text of a pair (question answering: the context)")
    group.add_argument("--input",
                       help='JSON lines: {"text": ..., "text_pair": ...} or {"question": ..., "context": ...}')
    group.add_argument("--output", help="JSON lines out, one per input line (default: stdout)")
    group.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    add_batch_size(group, 32)
    group.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                       help="bf16: bfloat16 matrix products on CPUs with AVX-512 (faster, ~1e-2 relative error); "
                            "int8: the int8 file of an export made with --quantize int8 (onnxruntime backend)")
    group.add_argument("--backend", choices=["paddle", "onnxruntime"], default=None,
                       help="paddle (Paddle Inference; default for fp32/bf16) or onnxruntime (CPU; default for int8; "
                            "needs an export made with --onnx or --quantize int8)")


def run_text(args: argparse.Namespace) -> int:
    if args.model is None or (args.text is None) == (args.input is None):
        raise InputError("give --model and one of --text / --input (or a TASK: glue, squad)")
    if args.output and args.text is not None:
        raise InputError("--output is for --input files; a --text prediction is printed")
    if args.output:
        check_output_file(args.output, what="predictions file", inputs=(args.input, args.model))
    predictor = Predictor(args.model, device=args.device, batch_size=args.batch_size, precision=args.precision,
                          backend=args.backend)
    if args.text is not None:
        prediction = predictor.predict([args.text], [args.text_pair])[0]
        print(json.dumps(prediction, ensure_ascii=False))
        return 1 if "error" in prediction else 0  # e.g. an empty context: nothing could be answered
    result = predict_jsonl(predictor, args.input, args.output)  # logs each bad line as it meets it
    if args.output:
        print(f"wrote {result.written} predictions to {args.output}", file=sys.stderr)
    if result.errors:
        print(f"{len(result.errors)} bad input lines (first: line {result.errors[0].line})", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------------------------- benchmark files
def _add_glue(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "glue", run_glue, "test-set predictions in the GLUE server's format", all_cores=True)
    add_glue_data_options(p)
    add_trained_model(p, "glue")
    p.add_argument("--out", required=True, help="directory for the submission TSVs")
    add_batch_size(p, 64)


def run_glue(args: argparse.Namespace) -> int:
    for path in predict_glue(args.task, args.data_dir, args.model, args.out, args.batch_size):
        print(f"wrote {path}")
    return 0


def _add_squad(tasks: argparse._SubParsersAction) -> None:
    p = add_command(tasks, "squad", run_squad, "answers for a SQuAD-format file (+ scores when it has answers)",
                    all_cores=True)
    p.add_argument("--data-file", required=True)
    add_trained_model(p, "squad")
    p.add_argument("--out", required=True,
                   help="directory for predictions.json, nbest_predictions.json, null_odds.json")
    add_batch_size(p, 64)
    add_squad_options(p, training=False)


def run_squad(args: argparse.Namespace) -> int:
    print_json(predict_squad(args.data_file, args.model, args.out, args.batch_size, **squad_answer_options(args)))
    return 0
