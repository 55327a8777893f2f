"""Sentence (pair) classification and regression: GLUE tasks and the user's own CSV/TSV/JSONL data.

Features are padded to `max_seq_length` (not to the longest in a batch): with `truncate_seq` pooling,
Funnel's outputs depend on padding, so fixed-length features keep predictions independent of batching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Example, glue_task, read_glue, read_tabular, write_glue_predictions
from ..io_utils import check_output_dir, read_json_object
from ..metrics import classification_metrics, glue_metrics, main_metric, regression_metrics
from ..modeling import FunnelForSequenceClassification
from ..registry import TASK_FILE, architecture
from ..tokenizer import FunnelTokenizer
from ..training import ArrayDataset, Trainer, TrainingArguments, init_distributed, predict_arrays
from ..training.rundir import check_run_directory
from .common import PRETRAINED, build_model, resolve_tokenizer, save_sidecar, write_results

DEFAULT_MAX_SEQ_LENGTH = 128  # of a model saved without task settings
OUTPUTS = architecture(FunnelForSequenceClassification.__name__).outputs  # logits


@dataclass
class ClassificationTask:
    """Labels and scoring of one classification/regression problem."""

    name: str
    label_list: tuple[str, ...] | None  # None: regression
    score: Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (predictions, gold) -> metrics
    main_metric: str

    @property
    def is_regression(self) -> bool:
        return self.label_list is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_list is None else len(self.label_list)

    def label_ids(self, examples: Sequence[Example]) -> np.ndarray:
        if self.is_regression:
            return np.array([float(e.label) for e in examples], dtype=np.float32)
        index = {label: i for i, label in enumerate(self.label_list)}
        return np.array([index[str(e.label)] for e in examples], dtype=np.int64)

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """Logits -> label ids (classification) or scores (regression)."""
        return logits[:, 0] if self.is_regression else logits.argmax(-1)


def glue_classification_task(task: str) -> ClassificationTask:
    spec = glue_task(task)
    name = spec.name
    return ClassificationTask(name, None if spec.is_regression else tuple(spec.labels),
                              lambda pred, gold: glue_metrics(name, pred, gold), main_metric(name))


def user_classification_task(label_list: Sequence[str] | None) -> ClassificationTask:
    if label_list is None:
        return ClassificationTask("regression", None, regression_metrics, "pearson")
    return ClassificationTask("classification", tuple(label_list), classification_metrics, "acc")


def encode(examples: Sequence[Example], tokenizer: FunnelTokenizer, max_seq_length: int,
           task: ClassificationTask | None = None) -> ArrayDataset:
    """Examples -> fixed-length features (labels included when `task` is given and examples are labelled)."""
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if any(e.text_b is not None for e in examples) else None
    if texts_b is not None:
        texts_b = [t if t is not None else "" for t in texts_b]
    batch = tokenizer(texts_a, texts_b, truncation="longest_first", max_length=max_seq_length,
                      padding="max_length", return_tensors="np", verbose=False)
    arrays = {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    if task is not None and all(e.label is not None for e in examples):
        arrays["labels"] = task.label_ids(examples)
    return ArrayDataset(arrays)


@dataclass
class ClassificationRun:
    """Everything a training run needs besides its hyperparameters."""

    task: ClassificationTask
    train: Sequence[Example]
    dev: Sequence[Example] | None
    model: str
    tokenizer: str | None = None
    train_vocab: int = 0
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    ignore_mismatched_sizes: bool = False
    init: str = PRETRAINED  # "random": explicitly train from randomly initialised weights of `model`'s shape
    revision: str | None = None  # of a hub model


def train_classifier(run: ClassificationRun, args: TrainingArguments) -> dict[str, Any]:
    """Fine-tune (or train from scratch), keep the best dev checkpoint in `<out>/best`, return dev metrics."""
    task = run.task
    corpus = [t for e in run.train for t in (e.text_a, e.text_b) if t]
    tokenizer = resolve_tokenizer(run.model, run.tokenizer, run.train_vocab, corpus, run.init, run.revision)
    labels = {"num_labels": task.num_labels}
    if task.label_list is not None:
        labels["id2label"] = dict(enumerate(task.label_list))
    labels["problem_type"] = "regression" if task.is_regression else "single_label_classification"
    model = build_model(FunnelForSequenceClassification, run.model, tokenizer, run.ignore_mismatched_sizes,
                        seed=args.seed, init=run.init, revision=run.revision, **labels)
    train_data = encode(run.train, tokenizer, run.max_seq_length, task)
    dev_data = encode(run.dev, tokenizer, run.max_seq_length, task) if run.dev else None

    def compute_metrics(predictions: dict[str, np.ndarray]) -> dict[str, float]:
        return task.score(task.decode(predictions["logits"]), dev_data.arrays["labels"])

    settings = {"task": task.name, "max_seq_length": run.max_seq_length, "label_list": task.label_list}
    trainer = Trainer(model, args, train_data, dev_data, compute_metrics if dev_data else None,
                      main_metric=task.main_metric if dev_data else "loss",
                      save_extra=partial(save_sidecar, tokenizer=tokenizer, settings_file=TASK_FILE, settings=settings))
    result = trainer.train()
    summary = {"task": task.name, "steps": result.global_step, "best_step": result.best_step,
               "best_" + task.main_metric: result.best_metric, "stopped_early": result.stopped_early,
               "train_examples": len(run.train), "dev_examples": len(run.dev or [])}
    if trainer.is_main:
        write_results(args.output_dir, summary)
    return summary


def read_task_settings(model_dir: str | Path) -> dict[str, Any]:
    """The classification settings saved beside a model (task, max_seq_length, label_list); {} when absent."""
    path = Path(model_dir) / TASK_FILE
    return read_json_object(path, "task settings file") if path.is_file() else {}


def load_for_inference(model_dir: str | Path) -> tuple[FunnelForSequenceClassification, FunnelTokenizer, int]:
    """Model, tokenizer and the max_seq_length it was trained with."""
    model = FunnelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = FunnelTokenizer.from_pretrained(model_dir)
    return model, tokenizer, int(read_task_settings(model_dir).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))


def predict_logits(model: FunnelForSequenceClassification, tokenizer: FunnelTokenizer, examples: Sequence[Example],
                   max_seq_length: int, batch_size: int = 64) -> np.ndarray:
    features = encode(examples, tokenizer, max_seq_length)
    return predict_arrays(model, features, OUTPUTS, batch_size, *init_distributed())["logits"]


# ------------------------------------------------------------------------------------------------ GLUE
def _dev_split(task: str) -> str:
    return "dev_matched" if glue_task(task).name == "MNLI" else "dev"


def train_glue(task: str, data_dir: str, args: TrainingArguments, model: str, skip_bad_rows: bool = False,
               **run_options: Any) -> dict[str, Any]:
    """Fine-tune `model` (a directory or hub name; with init="random", a preset or config too) on a GLUE task.
    `run_options`: the other `ClassificationRun` fields (tokenizer, train_vocab, max_seq_length, init, ...)."""
    spec = glue_classification_task(task)
    check_run_directory(args, (data_dir, model, run_options.get("tokenizer")))  # before any work
    train = read_glue(data_dir, task, "train", skip_bad_rows)
    dev = read_glue(data_dir, task, _dev_split(task), skip_bad_rows)
    return train_classifier(ClassificationRun(spec, train, dev, model, **run_options), args)


def evaluate_glue(task: str, data_dir: str, model_dir: str, split: str | None = None,
                  batch_size: int = 64, skip_bad_rows: bool = False) -> dict[str, float]:
    spec = glue_classification_task(task)
    split = split or _dev_split(task)
    examples = read_glue(data_dir, task, split, skip_bad_rows)
    model, tokenizer, max_len = load_for_inference(model_dir)
    logits = predict_logits(model, tokenizer, examples, max_len, batch_size)
    metrics = spec.score(spec.decode(logits), spec.label_ids(examples))
    return {"task": spec.name, "split": split, "examples": len(examples), **metrics}


def predict_glue(task: str, data_dir: str, model_dir: str, out_dir: str, batch_size: int = 64) -> list[Path]:
    """Test-set predictions in the GLUE server's format (MNLI: matched and mismatched; plus AX for MNLI)."""
    spec = glue_classification_task(task)
    check_output_dir(out_dir, what="prediction directory", inputs=(data_dir, model_dir), previous=())
    model, tokenizer, max_len = load_for_inference(model_dir)
    splits = [("MNLI", "test_matched"), ("MNLI", "test_mismatched")] if spec.name == "MNLI" else [(spec.name, "test")]
    written = []
    for name, split in splits:
        examples = read_glue(data_dir, name, split)
        labels = spec.decode(predict_logits(model, tokenizer, examples, max_len, batch_size))
        values = labels if spec.is_regression else [spec.label_list[i] for i in labels]
        written.append(write_glue_predictions(out_dir, name, [e.index for e in examples], values, split=split))
    if spec.name == "MNLI" and (Path(data_dir) / "diagnostic").is_dir():
        examples = read_glue(data_dir, "AX", "test")
        labels = spec.decode(predict_logits(model, tokenizer, examples, max_len, batch_size))
        written.append(write_glue_predictions(out_dir, "AX", [e.index for e in examples],
                                              [spec.label_list[i] for i in labels]))
    return written


# -------------------------------------------------------------------------------------------- user data
def train_user_classifier(train_file: str, dev_file: str | None, text_columns: Sequence[str], label_column: str,
                          args: TrainingArguments, model: str, regression: bool = False, file_format: str | None = None,
                          skip_bad_rows: bool = False, **run_options: Any) -> dict[str, Any]:
    """Fine-tune on the user's CSV / TSV / JSON-lines file; `run_options` as for `train_glue` (init, ...)."""
    kind = "regression" if regression else "classification"
    check_run_directory(args, (train_file, dev_file, model, run_options.get("tokenizer")))  # before any work
    train = read_tabular(train_file, text_columns, label_column, task=kind, format=file_format,
                         skip_bad_rows=skip_bad_rows)
    dev = None
    if dev_file:
        dev = read_tabular(dev_file, text_columns, label_column, task=kind, format=file_format,
                           label_list=train.label_list, skip_bad_rows=skip_bad_rows)
    task = user_classification_task(None if regression else train.label_list)
    return train_classifier(ClassificationRun(task, train, dev, model, **run_options), args)
