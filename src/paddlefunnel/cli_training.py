"""Command-line options shared by every `paddlefunnel train ...` job, turned into TrainingArguments."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

# flag -> TrainingArguments field
_TRAINING_FLAGS = {
    "learning_rate": ("--learning-rate", float), "per_device_batch_size": ("--batch-size", int),
    "eval_batch_size": ("--eval-batch-size", int), "gradient_accumulation_steps": ("--grad-accum", int),
    "num_epochs": ("--epochs", float), "max_steps": ("--max-steps", int), "warmup_ratio": ("--warmup-ratio", float),
    "warmup_steps": ("--warmup-steps", int), "lr_schedule": ("--lr-schedule", str),
    "weight_decay": ("--weight-decay", float), "max_grad_norm": ("--max-grad-norm", float), "seed": ("--seed", int),
    "logging_steps": ("--logging-steps", int), "eval_steps": ("--eval-steps", int), "save_steps": ("--save-steps", int),
    "early_stopping_patience": ("--early-stopping", int), "amp": ("--amp", str),
}


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (flags override --recipe values)")
    group.add_argument("--out", required=True, help="output directory: best/, checkpoint-last/, log.jsonl")
    group.add_argument("--recipe", help="hyperparameter file: a path, or a built-in name (glue, squad)")
    group.add_argument("--recipe-section", help="section of the recipe file, e.g. qnli-xlarge")
    for field, (flag, kind) in _TRAINING_FLAGS.items():
        group.add_argument(flag, dest=field, type=kind, default=None)
    group.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint-last")
    group.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")


def add_model_options(parser: argparse.ArgumentParser, default_max_len: int = 128) -> None:
    group = parser.add_argument_group("model and tokenizer")
    group.add_argument("--model", required=True,
                       help="model directory (ours or HuggingFace), a preset name (random init) or a config .json")
    group.add_argument("--tokenizer", help="tokenizer directory (default: the model directory)")
    group.add_argument("--train-vocab", type=int, default=0, metavar="SIZE",
                       help="no vocabulary at hand (preset/config): learn a WordPiece vocabulary of SIZE from the data")
    group.add_argument("--max-seq-length", type=int, default=default_max_len)
    group.add_argument("--ignore-mismatched-sizes", action="store_true",
                       help="re-initialise checkpoint weights whose shape differs (e.g. another label count)")


def recipe_path(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    packaged = resources.files("paddlefunnel").joinpath(f"recipes/{name.removesuffix('.json')}.json")
    if packaged.is_file():
        return Path(str(packaged))
    raise FileNotFoundError(f"--recipe {name!r}: no such file, and no built-in recipe of that name (glue, squad)")


def training_arguments(args: argparse.Namespace):
    from .training import TrainingArguments

    values = {field: getattr(args, field) for field in _TRAINING_FLAGS}
    values.update(output_dir=args.out, resume=args.resume, progress=not args.no_progress)
    if args.recipe:
        return TrainingArguments.from_recipe(recipe_path(args.recipe), args.recipe_section, **values)
    return TrainingArguments(**{k: v for k, v in values.items() if v is not None})


def model_options(args: argparse.Namespace) -> dict:
    return {"tokenizer": args.tokenizer, "train_vocab": args.train_vocab, "max_seq_length": args.max_seq_length,
            "ignore_mismatched_sizes": args.ignore_mismatched_sizes}
