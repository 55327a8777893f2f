"""`paddlefunnel` command line: one sub-command per job, each registered by an `_add_*` function below."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence


def use_all_cpu_cores() -> None:
    from .runtime import use_all_cpu_cores as configure

    configure()


def _print_json(result: dict, out_file: str | None = None) -> None:
    """Print a command's result as JSON and, when asked, also write it (atomically) to `out_file`."""
    text = json.dumps(result, indent=2)
    print(text)
    if out_file:
        from .io_utils import atomic_write_text

        atomic_write_text(out_file, text + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddlefunnel", description="Funnel-Transformer for PaddlePaddle")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError) as err:
        # User-facing errors already name the file/field; no traceback for them.
        print(f"paddlefunnel {args.command}: error: {err}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------------------------------ sub-commands
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in end-to-end demo (no downloads)")
    p.add_argument("--out", default="demo_output", help="directory for everything the demo writes")

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        use_all_cpu_cores()
        return run_demo(args.out)

    p.set_defaults(func=run)


def _add_vocab(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vocab", help="build a WordPiece vocabulary for a Funnel tokenizer")
    vocab_sub = p.add_subparsers(dest="vocab_command", required=True, metavar="ACTION")
    t = vocab_sub.add_parser("train", help="train a vocabulary on text files (Funnel special tokens get ids 0-6)")
    t.add_argument("corpus", nargs="+", help="UTF-8 text files, read line by line")
    t.add_argument("--vocab-size", type=int, required=True, help="vocabulary size, special tokens included")
    t.add_argument("--out", required=True, help="directory for vocab.txt, tokenizer.json, tokenizer_config.json")
    t.add_argument("--min-frequency", type=int, default=2, help="least count for a merge (default: 2)")
    t.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case, like Funnel)")
    t.add_argument("--max-length", type=int, default=512, help="model_max_length written to the config (default: 512)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")

    def run(args: argparse.Namespace) -> int:
        from .tokenizer import FunnelTokenizer

        tokenizer = FunnelTokenizer.train(
            args.corpus,
            args.vocab_size,
            min_frequency=args.min_frequency,
            show_progress=not args.quiet,
            do_lower_case=not args.cased,
            model_max_length=args.max_length,
        )
        tokenizer.save_pretrained(args.out)
        print(f"wrote a {len(tokenizer)}-token vocabulary to {args.out}")
        return 0

    t.set_defaults(func=run)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score prediction files with a benchmark's official metrics")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for add in _EVALUATE_BENCHMARKS:
        add(benchmarks)


def _add_evaluate_squad(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("squad", help="SQuAD v1.1 / v2.0, scored like the official evaluation scripts")
    p.add_argument("--data-file", required=True, help="the SQuAD JSON the predictions answer (e.g. dev-v2.0.json)")
    p.add_argument("--pred-file", required=True, help="JSON object: question id -> answer text ('' = no answer)")
    p.add_argument("--na-prob-file", help="JSON object: question id -> probability of no answer (v2.0)")
    p.add_argument("--na-prob-thresh", type=float, default=1.0,
                   help="predict no answer above this probability (default: 1.0, as the official script)")
    p.add_argument("--squad-version", choices=["auto", "1.1", "2.0"], default="auto",
                   help="scoring rules (default: auto, 2.0 if any question has is_impossible)")
    p.add_argument("--out-file", help="also write the metrics JSON here")

    def run(args: argparse.Namespace) -> int:
        from .data.squad import load_squad_dataset_for_eval, read_na_probs, read_squad_predictions
        from .metrics.squad import squad_evaluate

        dataset = load_squad_dataset_for_eval(args.data_file)
        predictions = read_squad_predictions(args.pred_file)
        na_probs = read_na_probs(args.na_prob_file) if args.na_prob_file else None
        metrics = squad_evaluate(dataset, predictions, na_probs, args.na_prob_thresh, version=args.squad_version)
        _print_json(metrics, args.out_file)
        return 0

    p.set_defaults(func=run)


_EVALUATE_BENCHMARKS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_evaluate_squad,
]


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a checkpoint between HuggingFace and Paddle layouts")
    p.add_argument("src", help="model directory (paddlefunnel or HuggingFace) or weights file")
    p.add_argument("dst", help="output directory (created; must be empty unless --overwrite)")
    p.add_argument("--to", choices=["paddle", "hf"], default="paddle",
                   help="paddle: config.json + model.safetensors in Paddle layout (default); "
                        "hf: a directory transformers loads")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty DST")

    def run(args: argparse.Namespace) -> int:
        from .weights import convert_checkpoint, model_class_for
        from .config import FunnelConfig

        target = convert_checkpoint(args.src, args.dst, to=args.to, overwrite=args.overwrite)
        arch = model_class_for(FunnelConfig.from_pretrained(target)).__name__
        print(f"wrote {arch} ({args.to} layout) to {target}: {', '.join(sorted(p.name for p in target.iterdir()))}")
        return 0

    p.set_defaults(func=run)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="check paddlefunnel against transformers on a checkpoint (needs torch)")
    p.add_argument("hf_dir", nargs="?", help="HuggingFace Funnel directory; default: a random small model")
    p.add_argument("--seq-len", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=3)

    def run(args: argparse.Namespace) -> int:
        try:
            from . import parity
            parity.require_reference()
        except ImportError as err:
            print(f"paddlefunnel compare: {err}", file=sys.stderr)
            return 2
        import tempfile

        use_all_cpu_cores()
        with tempfile.TemporaryDirectory() as tmp:
            hf_dir = args.hf_dir or parity.demo_reference_directory(tmp)
            rows = parity.compare_checkpoint(hf_dir, batch_size=args.batch_size, seq_len=args.seq_len)
        print(f"checkpoint: {args.hf_dir or 'random small transformers FunnelModel'}; padded sentence-pair batch "
              f"{args.batch_size}x{args.seq_len}; tolerances: forward {parity.FORWARD_TOLERANCE:.0e} "
              f"(max abs diff / max(1, max|reference|)), backward {parity.BACKWARD_TOLERANCE:.0e} "
              f"(relative to each gradient's scale)")
        print(parity.format_table(rows))
        failed = [label for label, report in rows if not report.ok()]
        if failed:
            print(f"FAILED: {', '.join(failed)} above tolerance", file=sys.stderr)
            return 1
        print("all heads within tolerance")
        return 0

    p.set_defaults(func=run)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from .cli_training import add_model_options, add_training_options

    p = sub.add_parser("train", help="fine-tune (or train from scratch) on a task")
    tasks = p.add_subparsers(dest="train_task", required=True, metavar="TASK")

    glue = tasks.add_parser("glue", help="a GLUE task from the official directory layout")
    glue.add_argument("--task", required=True, help="cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli")
    glue.add_argument("--data-dir", required=True, help="GLUE root: <data-dir>/<TASK>/train.tsv, dev.tsv, test.tsv")
    glue.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (counted and reported)")
    add_model_options(glue)
    add_training_options(glue)

    def run_glue(args: argparse.Namespace) -> int:
        from .cli_training import model_options, training_arguments
        from .tasks.classification import train_glue

        use_all_cpu_cores()
        summary = train_glue(args.task, args.data_dir, training_arguments(args), args.model,
                             skip_bad_rows=args.skip_bad_rows, **model_options(args))
        print(json.dumps(summary, indent=2))
        return 0

    glue.set_defaults(func=run_glue)

    classify = tasks.add_parser("classify", help="your own CSV / TSV / JSON-lines data")
    classify.add_argument("--train-file", required=True)
    classify.add_argument("--dev-file")
    classify.add_argument("--text-columns", required=True, help="one or two column names: a[,b]")
    classify.add_argument("--label-column", required=True)
    classify.add_argument("--regression", action="store_true", help="numeric labels, one output")
    classify.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="default: from the file extension")
    classify.add_argument("--skip-bad-rows", action="store_true")
    add_model_options(classify)
    add_training_options(classify)

    def run_classify(args: argparse.Namespace) -> int:
        from .cli_training import model_options, training_arguments
        from .tasks.classification import train_user_classifier

        use_all_cpu_cores()
        columns = [c.strip() for c in args.text_columns.split(",") if c.strip()]
        if not 1 <= len(columns) <= 2:
            raise ValueError(f"--text-columns takes one or two names, got {args.text_columns!r}")
        summary = train_user_classifier(args.train_file, args.dev_file, columns, args.label_column,
                                        training_arguments(args), args.model, regression=args.regression,
                                        file_format=args.format, skip_bad_rows=args.skip_bad_rows,
                                        **model_options(args))
        print(json.dumps(summary, indent=2))
        return 0

    classify.set_defaults(func=run_classify)
    _add_train_squad(tasks)


def _add_evaluate_glue(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("glue", help="score a fine-tuned model on a GLUE split (default: dev)")
    p.add_argument("--task", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True, help="a directory written by `paddlefunnel train glue` (its best/)")
    p.add_argument("--split", help="default: dev (MNLI: dev_matched)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out-file", help="also write the metrics here as JSON")

    def run(args: argparse.Namespace) -> int:
        from .tasks.classification import evaluate_glue

        use_all_cpu_cores()
        metrics = evaluate_glue(args.task, args.data_dir, args.model, args.split, args.batch_size)
        _print_json(metrics, args.out_file)
        return 0

    p.set_defaults(func=run)


_EVALUATE_BENCHMARKS.append(_add_evaluate_glue)

def _add_squad_options(parser: argparse.ArgumentParser, training: bool) -> None:
    """Window options when training; answer options always (at prediction, unset = the value saved with the model)."""
    group = parser.add_argument_group("SQuAD windows and answers")
    if training:
        group.add_argument("--max-seq-length", type=int, default=384)
        group.add_argument("--doc-stride", type=int, default=128, help="tokens of overlap between context windows")
        group.add_argument("--max-query-length", type=int, default=64)
        group.add_argument("--version-2-with-negative", action="store_true",
                           help="SQuAD v2.0: questions may have no answer (predict '' when the null score wins)")
    answer_defaults = {"n_best_size": 20, "max_answer_length": 30, "null_score_diff_threshold": 0.0}
    for name, kind in (("n_best_size", int), ("max_answer_length", int), ("null_score_diff_threshold", float)):
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=answer_defaults[name] if training else None)


def _squad_settings(args: argparse.Namespace):
    from .tasks.squad import SquadSettings

    return SquadSettings(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                         max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                         max_answer_length=args.max_answer_length,
                         version_2_with_negative=args.version_2_with_negative,
                         null_score_diff_threshold=args.null_score_diff_threshold)


def _add_train_squad(tasks: argparse._SubParsersAction) -> None:
    from .cli_training import add_training_options

    p = tasks.add_parser("squad", help="SQuAD v1.1 / v2.0 question answering (official JSON files)")
    p.add_argument("--train-file", required=True)
    p.add_argument("--dev-file", help="scored with the official metrics at every evaluation")
    p.add_argument("--model", required=True,
                   help="model directory (ours or HuggingFace), a preset name (random init) or a config .json")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the model directory)")
    p.add_argument("--train-vocab", type=int, default=0, metavar="SIZE")
    p.add_argument("--ignore-mismatched-sizes", action="store_true")
    _add_squad_options(p, training=True)
    add_training_options(p)

    def run(args: argparse.Namespace) -> int:
        from .cli_training import training_arguments
        from .tasks.squad import train_squad

        use_all_cpu_cores()
        summary = train_squad(args.train_file, args.dev_file, training_arguments(args), args.model,
                              _squad_settings(args), tokenizer=args.tokenizer, train_vocab=args.train_vocab,
                              ignore_mismatched_sizes=args.ignore_mismatched_sizes)
        print(json.dumps(summary, indent=2))
        return 0

    p.set_defaults(func=run)


def _add_predict_glue(tasks: argparse._SubParsersAction) -> None:
    p = tasks.add_parser("glue", help="test-set predictions in the GLUE server's format")
    p.add_argument("--task", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True, help="a directory written by `paddlefunnel train glue` (its best/)")
    p.add_argument("--out", required=True, help="directory for the submission TSVs")
    p.add_argument("--batch-size", type=int, default=64)

    def run(args: argparse.Namespace) -> int:
        from .tasks.classification import predict_glue

        use_all_cpu_cores()
        for path in predict_glue(args.task, args.data_dir, args.model, args.out, args.batch_size):
            print(f"wrote {path}")
        return 0

    p.set_defaults(func=run)


def _add_predict_squad(tasks: argparse._SubParsersAction) -> None:
    p = tasks.add_parser("squad", help="answers for a SQuAD-format file (+ scores when it has answers)")
    p.add_argument("--data-file", required=True)
    p.add_argument("--model", required=True, help="a directory written by `paddlefunnel train squad` (its best/)")
    p.add_argument("--out", required=True, help="directory for predictions.json, nbest_predictions.json, null_odds.json")
    p.add_argument("--batch-size", type=int, default=64)
    _add_squad_options(p, training=False)

    def run(args: argparse.Namespace) -> int:
        from .tasks.squad import predict_squad

        use_all_cpu_cores()
        result = predict_squad(args.data_file, args.model, args.out, args.batch_size, n_best_size=args.n_best_size,
                               max_answer_length=args.max_answer_length,
                               null_score_diff_threshold=args.null_score_diff_threshold)
        print(json.dumps(result, indent=2))
        return 0

    p.set_defaults(func=run)


# `predict TASK ...` for benchmark files; raw-text prediction adds its own options to the same parser through
# _PREDICT_DIRECT_OPTIONS (functions taking the `predict` parser), so both live under one command.
_PREDICT_TASKS: list[Callable[[argparse._SubParsersAction], None]] = [_add_predict_glue, _add_predict_squad]
_PREDICT_DIRECT_OPTIONS: list[Callable[[argparse.ArgumentParser], None]] = []


def _add_predict_raw_text(p: argparse.ArgumentParser) -> None:
    """`predict --model EXPORT_DIR --text ... | --input FILE.jsonl`: raw text through the Predictor."""
    group = p.add_argument_group("raw text (an exported model: `paddlefunnel export`)")
    group.add_argument("--model", help="export directory (classification or question answering model)")
    group.add_argument("--text", help="a text (question answering: the question)")
    group.add_argument("--text-pair", help="second text of a pair (question answering: the context)")
    group.add_argument("--input", help='JSON lines: {"text": ..., "text_pair": ...} or {"question": ..., "context": ...}')
    group.add_argument("--output", help="JSON lines out, one per input line (default: stdout)")
    group.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16: bfloat16 matrix products on CPUs with AVX-512 (faster, ~1e-2 relative error)")

    def run(args: argparse.Namespace) -> int:
        if args.model is None or (args.text is None) == (args.input is None):
            print("paddlefunnel predict: error: give --model and one of --text / --input (or a TASK: glue, squad)",
                  file=sys.stderr)
            return 2
        from .inference import Predictor, predict_jsonl

        use_all_cpu_cores()
        predictor = Predictor(args.model, device=args.device, batch_size=args.batch_size, precision=args.precision)
        if args.text is not None:
            print(json.dumps(predictor.predict([args.text], [args.text_pair])[0], ensure_ascii=False))
            return 0
        result = predict_jsonl(predictor, args.input, args.output)
        if args.output:
            print(f"wrote {result.written} predictions to {args.output}", file=sys.stderr)
        if result.errors:
            print(f"{len(result.errors)} bad input lines (first: line {result.errors[0].line})", file=sys.stderr)
            return 1
        return 0

    p.set_defaults(func=run)


_PREDICT_DIRECT_OPTIONS.append(_add_predict_raw_text)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predictions from a trained model")
    for add_options in _PREDICT_DIRECT_OPTIONS:
        add_options(p)
    tasks = p.add_subparsers(dest="predict_task", required=not _PREDICT_DIRECT_OPTIONS, metavar="TASK")
    for add in _PREDICT_TASKS:
        add(tasks)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="static Paddle program (and ONNX) for deployment, checked against the model")
    p.add_argument("model_dir", help="a model directory (config.json + weights; tokenizer and task files travel along)")
    p.add_argument("out_dir", help="export directory (created; must be empty unless --overwrite)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (needs the onnx extra) and check it")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")

    def run(args: argparse.Namespace) -> int:
        from .export import ExportError, export_model

        use_all_cpu_cores()
        try:
            export_model(args.model_dir, args.out_dir, onnx=args.onnx, overwrite=args.overwrite)
        except (ExportError, ImportError) as err:
            print(f"paddlefunnel export: error: {err}", file=sys.stderr)
            return 1 if isinstance(err, ExportError) else 2
        return 0

    p.set_defaults(func=run)


def _add_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="parameters and forward FLOPs of a configuration against a same-size BERT")
    p.add_argument("--preset", required=True, help="e.g. small, funnel-transformer/intermediate, or a config.json")
    p.add_argument("--seq", type=int, default=512, help="sequence length (default: 512)")
    p.add_argument("--batch", type=int, default=1, help="sequences per batch (default: 1)")

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from .config import FunnelConfig
        from .flops import format_comparison

        source = Path(args.preset)
        config = FunnelConfig.from_pretrained(source) if source.exists() else FunnelConfig.from_preset(args.preset)
        print(format_comparison(args.preset, config, args.seq, args.batch))
        return 0

    p.set_defaults(func=run)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_demo,
    _add_train,
    _add_predict,
    _add_convert,
    _add_compare,
    _add_vocab,
    _add_evaluate,
    _add_export,
    _add_flops,
]

if __name__ == "__main__":
    sys.exit(main())
