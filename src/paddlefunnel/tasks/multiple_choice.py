"""Multiple choice (RACE, and SWAG-like tables): features, training, evaluation and prediction files.

Encoding. Each choice of a question becomes one sequence `<cls> context <sep> qa <sep>` (token types 2, 0.., 1..),
where `qa` is the question and the choice joined by a space, or, when the question has a blank "_" (RACE's cloze
questions), the question with the blank filled by the choice. This follows the authors' RACE fine-tuning code
(laiguokun/Funnel-Transformer, tensorflow/race.py) in: the blank filling, `max_qa_length` = 128 and
`max_seq_length` = 512 by default, the question+choice cut to its *last* `max_qa_length` tokens (the choice is
kept, the start of a long question goes), and the context cut at its end to fill the rest. One difference: the
authors put the question+choice first (`<cls> qa <sep> article <sep>`); here the context comes first, as in
HuggingFace's multiple-choice examples, so the context is segment A like a classifier's first text.

Every sequence is padded to `max_seq_length` (Funnel's pooling is not padding-neutral, see tasks/classification),
so arrays are [n, num_choices, max_seq_length] and predictions never depend on batching.

Metrics: "acc" over all questions and, for RACE, "acc_middle" / "acc_high" (RACE-M / RACE-H; the paper's RACE
number is "acc") with the counts "examples_middle" / "examples_high".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.multiple_choice import (ChoiceColumns, ChoiceExample, choice_letter, read_choice_table, read_race,
                                    same_choice_count)
from ..errors import InputError
from ..io_utils import atomic_path, check_output_file
from ..modeling import FunnelForMultipleChoice
from ..registry import TASK_FILE, architecture
from ..tokenizer import FunnelTokenizer
from ..tokenizer.pipeline import CLS_TOKEN_TYPE_ID, PAD_TOKEN_TYPE_ID
from ..training import ArrayDataset, Trainer, TrainingArguments, init_distributed, predict_arrays
from ..training.rundir import check_run_directory
from .classification import read_task_settings
from .common import PRETRAINED, build_model, resolve_tokenizer, save_sidecar, write_results


TASK_NAME = "multiple_choice"
DATA_FORMATS = ("race", "table")
# data format -> (max_seq_length, max_qa_length) defaults: RACE's are the authors'; tables are usually short.
DEFAULT_LENGTHS = {"race": (512, 128), "table": (128, 64)}
MAIN_METRIC = "acc"
OUTPUTS = architecture(FunnelForMultipleChoice.__name__).outputs  # logits [batch, num_choices]
BLANK = "_"


# ------------------------------------------------------------------------------------------------ features
def qa_text(question: str, choice: str) -> str:
    """The question with its blank filled by `choice` (RACE cloze), else question and choice joined by a space."""
    if BLANK in question:
        return question.replace(BLANK, choice)
    return f"{question} {choice}" if question else choice


def resolve_lengths(data_format: str, max_seq_length: int | None, max_qa_length: int | None) -> tuple[int, int]:
    """The lengths to use (None: the data format's default) after checking that they leave room for a context."""
    if data_format not in DEFAULT_LENGTHS:
        raise InputError(f"data format {data_format!r} is unknown; expected one of {', '.join(DATA_FORMATS)}")
    default_seq, default_qa = DEFAULT_LENGTHS[data_format]
    seq = default_seq if max_seq_length is None else max_seq_length
    qa = min(default_qa, seq // 2) if max_qa_length is None else max_qa_length
    if qa < 1 or seq < qa + 4:
        raise InputError(f"max_seq_length={seq}, max_qa_length={qa}: need max_qa_length >= 1 and max_seq_length "
                         f">= max_qa_length + 4 (three special tokens and at least one context token)")
    return seq, qa


def _token_ids(tokenizer: FunnelTokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []


def _layout(context: list[int], qa: list[int], tokenizer: FunnelTokenizer, max_seq_length: int,
            max_qa_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, token_type_ids) of one choice, unpadded: the pair layout of the tokenizer, cut as described
    in the module docstring."""
    qa = qa[-max_qa_length:]
    context = context[: max_seq_length - 3 - len(qa)]
    ids = [tokenizer.cls_token_id, *context, tokenizer.sep_token_id, *qa, tokenizer.sep_token_id]
    types = [CLS_TOKEN_TYPE_ID] + [0] * (len(context) + 1) + [1] * (len(qa) + 1)
    return ids, types


def encode_choices(examples: Sequence[ChoiceExample], tokenizer: FunnelTokenizer, max_seq_length: int,
                   max_qa_length: int, with_labels: bool = True) -> ArrayDataset:
    """Examples -> input_ids / attention_mask / token_type_ids [n, num_choices, max_seq_length] (+ labels [n]
    when `with_labels` and every example has one)."""
    if not examples:
        raise InputError("no multiple-choice examples to encode")
    num_choices = same_choice_count(examples, "multiple-choice data")
    contexts = list(dict.fromkeys(example.context for example in examples))  # RACE: one article, many questions
    context_ids = dict(zip(contexts, _token_ids(tokenizer, contexts)))
    qa_ids = _token_ids(tokenizer, [qa_text(e.question, c) for e in examples for c in e.choices])
    shape = (len(examples), num_choices, max_seq_length)
    input_ids = np.full(shape, tokenizer.pad_token_id, dtype=np.int64)
    token_type_ids = np.full(shape, PAD_TOKEN_TYPE_ID, dtype=np.int64)
    attention_mask = np.zeros(shape, dtype=np.int64)
    for i, example in enumerate(examples):
        for j in range(num_choices):
            ids, types = _layout(context_ids[example.context], qa_ids[i * num_choices + j], tokenizer,
                                 max_seq_length, max_qa_length)
            input_ids[i, j, : len(ids)] = ids
            token_type_ids[i, j, : len(ids)] = types
            attention_mask[i, j, : len(ids)] = 1
    arrays = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    if with_labels and all(example.label is not None for example in examples):
        arrays["labels"] = np.array([example.label for example in examples], dtype=np.int64)
    return ArrayDataset(arrays)


# ------------------------------------------------------------------------------------------------- metrics
def choice_metrics(predictions: np.ndarray, labels: np.ndarray,
                   subsets: Sequence[str | None] | None = None) -> dict[str, float]:
    """Accuracy, and per subset ("acc_<subset>", "examples_<subset>") when the examples have subsets (RACE)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    correct = predictions == labels
    metrics: dict[str, float] = {MAIN_METRIC: float(correct.mean())}
    if subsets is not None:
        names = np.array([s or "" for s in subsets])
        for subset in sorted({s for s in subsets if s}):
            chosen = names == subset
            metrics[f"acc_{subset}"] = float(correct[chosen].mean())
            metrics[f"examples_{subset}"] = int(chosen.sum())
    return metrics


def _subsets(examples: Sequence[ChoiceExample]) -> list[str | None] | None:
    return [e.subset for e in examples] if any(e.subset for e in examples) else None


# ------------------------------------------------------------------------------------------------ training
@dataclass
class MultipleChoiceRun:
    """Everything a training run needs besides its hyperparameters (None lengths: the data format's defaults)."""

    train: Sequence[ChoiceExample]
    dev: Sequence[ChoiceExample] | None
    model: str
    data_format: str = "race"
    columns: ChoiceColumns | None = None  # tables: saved with the model, the defaults of evaluate / predict
    tokenizer: str | None = None
    train_vocab: int = 0
    max_seq_length: int | None = None
    max_qa_length: int | None = None
    ignore_mismatched_sizes: bool = False
    init: str = PRETRAINED  # "random": explicitly train from randomly initialised weights of `model`'s shape
    revision: str | None = None  # of a hub model


def _corpus(examples: Sequence[ChoiceExample]) -> list[str]:
    """Every text of the training data once (a RACE article serves several questions)."""
    texts = dict.fromkeys(e.context for e in examples)
    texts.update(dict.fromkeys(qa_text(e.question, c) for e in examples for c in e.choices))
    return [t for t in texts if t]


def train_multiple_choice(run: MultipleChoiceRun, args: TrainingArguments) -> dict[str, Any]:
    """Fine-tune (or train from scratch), keep the best dev checkpoint in `<out>/best`, return the summary."""
    max_seq_length, max_qa_length = resolve_lengths(run.data_format, run.max_seq_length, run.max_qa_length)
    num_choices = same_choice_count([*run.train, *(run.dev or [])], "training and dev data")
    tokenizer = resolve_tokenizer(run.model, run.tokenizer, run.train_vocab, _corpus(run.train), run.init,
                                  run.revision)
    model = build_model(FunnelForMultipleChoice, run.model, tokenizer, run.ignore_mismatched_sizes, seed=args.seed,
                        init=run.init, revision=run.revision)
    train_data = encode_choices(run.train, tokenizer, max_seq_length, max_qa_length)
    dev_data = encode_choices(run.dev, tokenizer, max_seq_length, max_qa_length) if run.dev else None
    dev_subsets = _subsets(run.dev) if run.dev else None

    def compute_metrics(predictions: dict[str, np.ndarray]) -> dict[str, float]:
        return choice_metrics(predictions["logits"].argmax(-1), dev_data.arrays["labels"], dev_subsets)

    settings = {"task": TASK_NAME, "max_seq_length": max_seq_length, "max_qa_length": max_qa_length,
                "num_choices": num_choices, "data_format": run.data_format,
                "columns": run.columns.to_json() if run.columns else None}
    trainer = Trainer(model, args, train_data, dev_data, compute_metrics if dev_data else None,
                      main_metric=MAIN_METRIC if dev_data else "loss",
                      save_extra=partial(save_sidecar, tokenizer=tokenizer, settings_file=TASK_FILE, settings=settings))
    result = trainer.train()
    summary = {"task": TASK_NAME, "data_format": run.data_format, "steps": result.global_step,
               "best_step": result.best_step, f"best_{MAIN_METRIC}": result.best_metric,
               "stopped_early": result.stopped_early, "train_examples": len(run.train),
               "dev_examples": len(run.dev or []), "num_choices": num_choices,
               "train_skipped": len(getattr(run.train, "skipped", [])),
               "dev_skipped": len(getattr(run.dev, "skipped", []))}
    if dev_data is not None:  # the last evaluation's (RACE: per subset); best/ is scored by `best_acc`
        summary["final_dev_metrics"] = {k: int(v) if k.startswith("examples") else v
                                        for k, v in result.final_metrics.items() if k.startswith(("acc", "examples"))}
    if trainer.is_main:
        write_results(args.output_dir, summary)
    return summary


def train_race(data_dir: str, args: TrainingArguments, model: str, skip_bad_rows: bool = False,
               **run_options: Any) -> dict[str, Any]:
    """Fine-tune `model` on RACE (official layout: train/ and dev/ of `data_dir`); `run_options`: the other
    `MultipleChoiceRun` fields (tokenizer, train_vocab, max_seq_length, max_qa_length, init, ...)."""
    check_run_directory(args, (data_dir, model, run_options.get("tokenizer")))  # before any work
    train = read_race(data_dir, "train", skip_bad_rows=skip_bad_rows)
    dev = read_race(data_dir, "dev", skip_bad_rows=skip_bad_rows)
    return train_multiple_choice(MultipleChoiceRun(train, dev, model, "race", **run_options), args)


def train_choice_table(train_file: str, dev_file: str | None, columns: ChoiceColumns, args: TrainingArguments,
                       model: str, file_format: str | None = None, skip_bad_rows: bool = False,
                       **run_options: Any) -> dict[str, Any]:
    """Fine-tune on the user's CSV / TSV / JSON-lines multiple-choice files; `run_options` as for `train_race`."""
    if columns.label_column is None:
        raise InputError("training needs a label column")
    check_run_directory(args, (train_file, dev_file, model, run_options.get("tokenizer")))  # before any work
    train = read_choice_table(train_file, columns, format=file_format, skip_bad_rows=skip_bad_rows)
    dev = read_choice_table(dev_file, columns, format=file_format, skip_bad_rows=skip_bad_rows) if dev_file else None
    return train_multiple_choice(MultipleChoiceRun(train, dev, model, "table", columns, **run_options), args)


# ----------------------------------------------------------------------------------- evaluation, prediction
@dataclass
class TrainedChoiceModel:
    """A trained model with its tokenizer and the settings it was trained with."""

    model: FunnelForMultipleChoice
    tokenizer: FunnelTokenizer
    settings: dict[str, Any]

    @property
    def lengths(self) -> tuple[int, int]:
        return resolve_lengths(self.settings.get("data_format", "race"), self.settings.get("max_seq_length"),
                               self.settings.get("max_qa_length"))


def read_choice_settings(model_dir: str | Path) -> dict[str, Any]:
    """The settings saved by `train_multiple_choice` ({} for a model trained elsewhere); another task's are refused."""
    settings = read_task_settings(model_dir)
    if settings and settings.get("task") != TASK_NAME:
        raise InputError(f"{model_dir} was trained for {settings.get('task')!r}, not multiple choice "
                         f"({Path(model_dir) / TASK_FILE})")
    return settings


def load_choice_model(model_dir: str | Path) -> TrainedChoiceModel:
    settings = read_choice_settings(model_dir)
    return TrainedChoiceModel(FunnelForMultipleChoice.from_pretrained(model_dir),
                              FunnelTokenizer.from_pretrained(model_dir), settings)


def predict_choice_logits(trained: TrainedChoiceModel, examples: Sequence[ChoiceExample],
                          batch_size: int = 64) -> np.ndarray:
    """Logits [n, num_choices] of the dynamic-graph model."""
    features = encode_choices(examples, trained.tokenizer, *trained.lengths, with_labels=False)
    return predict_arrays(trained.model, features, OUTPUTS, batch_size, *init_distributed())["logits"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def evaluate_multiple_choice(data: Sequence[ChoiceExample], model_dir: str | Path,
                             batch_size: int = 64) -> dict[str, Any]:
    """Accuracy (and per RACE subset) of the model in `model_dir` on labelled examples (`read_race`,
    `read_choice_table`)."""
    if any(example.label is None for example in data):
        raise InputError("evaluation needs a label for every question (a --label-column for tables)")
    logits = predict_choice_logits(load_choice_model(model_dir), data, batch_size)
    labels = np.array([example.label for example in data])
    return {"task": TASK_NAME, "examples": len(data), **choice_metrics(logits.argmax(-1), labels, _subsets(data))}


def predict_multiple_choice(data: Sequence[ChoiceExample], model_dir: str | Path, output_file: str | Path,
                            batch_size: int = 64) -> dict[str, Any]:
    """Write one JSON line per question, `{"id", "label" (choice index), "answer" (its letter), "probabilities"}`,
    to `output_file` atomically; returns a summary (with the metrics when every question has a label)."""
    check_output_file(output_file, what="predictions file", inputs=(model_dir,))
    logits = predict_choice_logits(load_choice_model(model_dir), data, batch_size)
    probabilities = softmax(logits.astype(np.float64))
    with atomic_path(output_file, "predictions file") as tmp, tmp.open("w", encoding="utf-8") as out:
        for example, row in zip(data, probabilities):
            best = int(row.argmax())
            record = {"id": example.guid, "label": best, "answer": choice_letter(best),
                      "probabilities": [round(float(p), 6) for p in row]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary: dict[str, Any] = {"task": TASK_NAME, "written": len(data), "output": str(output_file)}
    if all(example.label is not None for example in data):
        labels = np.array([example.label for example in data])
        summary.update(choice_metrics(logits.argmax(-1), labels, _subsets(data)))
    return summary
