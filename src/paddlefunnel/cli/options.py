"""Options shared by several commands, each declared once, and how the parsed values become library arguments.

A command module adds the groups it needs (`add_model_options`, `add_training_options`, ...) and turns the
parsed namespace into library objects with the matching reader (`model_options`, `training_arguments`, ...),
so an option's name, default and help text live in one place.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from ..errors import InputError
from ..io_utils import atomic_write_text, check_output_file
from ..tasks.common import INIT_CHOICES, PRETRAINED
from ..tasks.squad import SquadSettings
from ..training import TrainingArguments, recipe_path
from ..training.arguments import apply_task_options, builtin_recipes, recipe_task_options

Command = Callable[[argparse.Namespace], int]
Options = argparse._ActionsContainer  # a parser or one of its argument groups


class StrictArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that takes only whole option names (`allow_abbrev=False`): `--lr 0.1` is an unknown
    option, not a guess at `--lr-schedule`. Sub-parsers are made with the parent's class, so the top parser
    being one makes every parser below it one too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


def add_command(sub: argparse._SubParsersAction, name: str, run: Command, help: str,
                all_cores: bool = False) -> argparse.ArgumentParser:
    """A sub-command whose parsed arguments go to `run`; `all_cores`: the job owns the machine (see cli.main)."""
    parser = sub.add_parser(name, help=help, allow_abbrev=False)
    parser.set_defaults(func=run, all_cores=all_cores)
    return parser


def print_json(result: dict, out_file: str | None = None) -> None:
    """Print a command's result as JSON and, when asked, also write it (atomically) to `out_file`."""
    text = json.dumps(result, indent=2)
    print(text)
    if out_file:
        atomic_write_text(out_file, text + "\n")


# ------------------------------------------------------------------------------------------- single options
def add_out_file(parser: Options) -> None:
    parser.add_argument("--out-file", help="also write the metrics JSON here")


def check_out_file(args: argparse.Namespace, *inputs: str | None) -> None:
    """--out-file checked before any work (io_utils.check_output_file): not a directory, not an input, writable."""
    if args.out_file:
        check_output_file(args.out_file, what="metrics file", inputs=inputs)


def add_batch_size(parser: Options, default: int) -> None:
    parser.add_argument("--batch-size", type=int, default=default)


def add_overwrite(parser: Options, target: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace a non-empty {target}")


def add_trained_model(parser: Options, task: str) -> None:
    """--model for evaluation and prediction: what `paddlefunnel train TASK` wrote."""
    parser.add_argument("--model", required=True,
                        help=f"a directory written by `paddlefunnel train {task}` (its best/)")


def add_glue_data_options(parser: Options) -> None:
    parser.add_argument("--task", required=True, help="cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli")
    parser.add_argument("--data-dir", required=True, help="GLUE root: <data-dir>/<TASK>/train.tsv, dev.tsv, test.tsv")


# ------------------------------------------------------------------------------------------ model and tokenizer
def add_model_options(parser: argparse.ArgumentParser, max_seq_length: int | None = 128) -> None:
    """What to fine-tune and how to tokenize; `max_seq_length=None` when the command declares its own."""
    group = parser.add_argument_group("model and tokenizer")
    group.add_argument("--model", required=True,
                       help="pretrained weights: a model directory (ours, HuggingFace's, PaddleNLP's) or a hub name "
                            "(org/name: from the HuggingFace cache, else downloaded); with --init random also a "
                            "preset name or a config .json")
    group.add_argument("--init", choices=INIT_CHOICES, default=PRETRAINED,
                       help="random: train from randomly initialised weights in --model's shape (a preset, a config "
                            ".json, or the config alone of a directory / hub model); default: pretrained weights")
    group.add_argument("--revision", help="branch, tag or commit of a hub --model (default: main)")
    group.add_argument("--tokenizer", help="tokenizer directory or hub name (default: the model's own)")
    group.add_argument("--train-vocab", type=int, default=0, metavar="SIZE",
                       help="no vocabulary at hand (preset/config): learn a WordPiece vocabulary of SIZE from the data")
    if max_seq_length is not None:
        group.add_argument("--max-seq-length", type=int, default=max_seq_length)
    group.add_argument("--ignore-mismatched-sizes", action="store_true",
                       help="re-initialise checkpoint weights whose shape differs (e.g. another label count)")


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments `add_model_options` stands for, beside the model itself (`args.model`)."""
    return {"tokenizer": args.tokenizer, "train_vocab": args.train_vocab, "max_seq_length": args.max_seq_length,
            "ignore_mismatched_sizes": args.ignore_mismatched_sizes, "init": args.init, "revision": args.revision}


# -------------------------------------------------------------------------------------------------- training
# TrainingArguments field -> (flag, type); every flag defaults to None so that unset flags keep the recipe's value.
TRAINING_FLAGS: dict[str, tuple[str, type]] = {
    "learning_rate": ("--learning-rate", float), "per_device_batch_size": ("--batch-size", int),
    "eval_batch_size": ("--eval-batch-size", int), "gradient_accumulation_steps": ("--grad-accum", int),
    "num_epochs": ("--epochs", float), "max_steps": ("--max-steps", int), "warmup_ratio": ("--warmup-ratio", float),
    "warmup_steps": ("--warmup-steps", int), "lr_schedule": ("--lr-schedule", str),
    "weight_decay": ("--weight-decay", float), "max_grad_norm": ("--max-grad-norm", float), "seed": ("--seed", int),
    "logging_steps": ("--logging-steps", int), "eval_steps": ("--eval-steps", int), "save_steps": ("--save-steps", int),
    "early_stopping_patience": ("--early-stopping", int), "amp": ("--amp", str),
    "layer_decay": ("--layer-decay", float), "recompute": ("--recompute", bool),
}


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (flags override --recipe values)")
    group.add_argument("--out", required=True, help="output directory: best/, checkpoint-last/, log.jsonl")
    group.add_argument("--recipe", help="hyperparameter file: a path, or a built-in name "
                                        f"({', '.join(builtin_recipes())})")
    group.add_argument("--recipe-section", help="section of the recipe file, e.g. qnli-xlarge")
    for field, (flag, kind) in TRAINING_FLAGS.items():
        if kind is bool:  # a switch: given -> True, absent -> None (the recipe's value stays)
            group.add_argument(flag, dest=field, action="store_const", const=True, default=None)
        else:
            group.add_argument(flag, dest=field, type=kind, default=None)
    group.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint-last")
    group.add_argument("--overwrite", action="store_true",
                       help="start over in an --out that holds an earlier run (kept in <out>/.previous-run "
                            "until the new run finishes)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")
    parser.set_defaults(option_default=parser.get_default)  # a recipe's "_task_options" fill options left at default


def training_arguments(args: argparse.Namespace) -> TrainingArguments:
    """The recipe (when given) overridden by the flags that were set. The recipe section's "_task_options" also
    fill the command's options left unset (None or at their default; training/arguments.py apply_task_options)."""
    if args.max_steps is not None and args.max_steps <= 0:  # TrainingArguments reads 0 as "by epochs"
        raise InputError(f"--max-steps must be a positive number of optimizer steps, got {args.max_steps}; "
                         f"omit it to train for --epochs")
    values = {field: getattr(args, field) for field in TRAINING_FLAGS}
    values.update(output_dir=args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    if args.recipe:
        path = recipe_path(args.recipe)
        task_options = recipe_task_options(path, args.recipe_section)
        defaults = {name: args.option_default(name) for name in task_options}
        vars(args).update(apply_task_options(vars(args), defaults, task_options,
                                             f"recipe {path} section {args.recipe_section!r}"))
        return TrainingArguments.from_recipe(path, args.recipe_section, **values)
    return TrainingArguments(**{k: v for k, v in values.items() if v is not None})


# ----------------------------------------------------------------------------------------------------- SQuAD
_ANSWER_OPTIONS: dict[str, tuple[type, int | float]] = {  # SquadSettings field -> (type, training default)
    "n_best_size": (int, 20), "max_answer_length": (int, 30), "null_score_diff_threshold": (float, 0.0),
}


def add_squad_options(parser: argparse.ArgumentParser, training: bool) -> None:
    """Window options when training; answer options always (at prediction, unset = the value saved with the model)."""
    group = parser.add_argument_group("SQuAD windows and answers")
    if training:
        group.add_argument("--max-seq-length", type=int, default=384)
        group.add_argument("--doc-stride", type=int, default=128, help="tokens of overlap between context windows")
        group.add_argument("--max-query-length", type=int, default=64)
        group.add_argument("--version-2-with-negative", action="store_true",
                           help="SQuAD v2.0: questions may have no answer (predict '' when the null score wins)")
    for name, (kind, default) in _ANSWER_OPTIONS.items():
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=default if training else None)


def squad_answer_options(args: argparse.Namespace) -> dict:
    """The answer options as keyword arguments (None: not given)."""
    return {name: getattr(args, name) for name in _ANSWER_OPTIONS}


def squad_settings(args: argparse.Namespace) -> SquadSettings:
    return SquadSettings(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                         max_query_length=args.max_query_length,
                         version_2_with_negative=args.version_2_with_negative, **squad_answer_options(args))
