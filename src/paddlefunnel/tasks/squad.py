"""SQuAD v1.1 / v2.0: question + context -> sliding windows -> span logits -> n-best answers -> official scores.

Windows: the question (cut to `max_query_length` tokens) is paired with `max_seq_length`-token slices of the
context that overlap by `doc_stride` tokens. A training window that does not contain the whole answer, and every
window of an unanswerable question, points at <cls> (index 0). At prediction time the best span over all windows
of a question wins; for v2.0 it competes with the "no answer" score (the <cls> logits).
"""

from __future__ import annotations

import collections
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data import SquadExample, load_squad_dataset_for_eval, read_squad
from ..errors import InputError
from ..io_utils import atomic_write_text, check_output_dir, read_json_object
from ..metrics import squad_evaluate
from ..modeling import FunnelForQuestionAnswering
from ..registry import SQUAD_SETTINGS_FILE, architecture
from ..tokenizer import FunnelTokenizer
from ..training import ArrayDataset, Trainer, TrainingArguments, init_distributed, predict_arrays
from ..training.rundir import check_run_directory
from .common import PRETRAINED, build_model, resolve_tokenizer, save_sidecar, write_results

logger = logging.getLogger("paddlefunnel")

PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"
QA_OUTPUTS = architecture(FunnelForQuestionAnswering.__name__).outputs  # start_logits, end_logits


@dataclass
class SquadSettings:
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.max_query_length + 3 >= self.max_seq_length:
            raise InputError(f"max_query_length={self.max_query_length} leaves no room for context in "
                             f"max_seq_length={self.max_seq_length}")
        if not 0 <= self.doc_stride < self.max_seq_length - self.max_query_length - 3:
            raise InputError(f"doc_stride={self.doc_stride} must be smaller than the context part of a window "
                             f"({self.max_seq_length - self.max_query_length - 3} tokens)")


@dataclass
class SquadFeatures:
    """Model inputs for every window, plus what maps a window's tokens back to its example's context."""

    arrays: dict[str, np.ndarray]
    example_index: np.ndarray  # window -> index into the examples list
    offsets: list[list[tuple[int, int] | None]]  # per window and token: context character span, or None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (question id, reason)

    def __len__(self) -> int:
        return len(self.example_index)


# ------------------------------------------------------------------------------------------- features
def _cut_questions(questions: list[str], tokenizer: FunnelTokenizer, max_query_length: int) -> list[str]:
    """Keep each question's first `max_query_length` tokens (cut at a character boundary)."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    cut = []
    for question, offsets in zip(questions, encoded["offset_mapping"]):
        cut.append(question if len(offsets) <= max_query_length else question[: offsets[max_query_length - 1][1]])
    return cut


def _answer_tokens(offsets: list[tuple[int, int] | None], start_char: int, end_char: int) -> tuple[int, int]:
    """Token span of the answer within one window, or (0, 0) (<cls>) when the window does not hold all of it."""
    context = [i for i, span in enumerate(offsets) if span is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in context if offsets[i][1] > start_char)
    end = next(i for i in reversed(context) if offsets[i][0] < end_char)
    return start, end


def build_features(examples: Sequence[SquadExample], tokenizer: FunnelTokenizer, settings: SquadSettings,
                   training: bool = False) -> SquadFeatures:
    """Windows for every example; with `training`, start/end positions of the first gold answer."""
    usable, skipped = [], []
    for index, example in enumerate(examples):
        if not tokenizer.tokenize(example.question):
            skipped.append((example.qas_id, "question has no tokens after tokenisation"))
        elif not tokenizer.tokenize(example.context):
            skipped.append((example.qas_id, "context has no tokens after tokenisation"))
        else:
            usable.append(index)
    if skipped:
        logger.warning("SQuAD: %d questions skipped (first: %s)", len(skipped), "; ".join(f"{q}: {r}" for q, r in skipped[:3]))
    if not usable:
        raise InputError("no usable SQuAD questions: " + "; ".join(f"{q}: {r}" for q, r in skipped[:5]))
    questions = _cut_questions([examples[i].question for i in usable], tokenizer, settings.max_query_length)
    contexts = [examples[i].context for i in usable]
    encoded = tokenizer(questions, contexts, truncation="only_second", max_length=settings.max_seq_length,
                        stride=settings.doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding="max_length", verbose=False)
    windows = len(encoded["input_ids"])
    example_index = np.array([usable[i] for i in encoded["overflow_to_sample_mapping"]], dtype=np.int64)
    offsets: list[list[tuple[int, int] | None]] = []
    for w in range(windows):
        ids = encoded.sequence_ids(w)
        offsets.append([tuple(span) if sid == 1 else None for sid, span in zip(ids, encoded["offset_mapping"][w])])
    arrays = {k: np.asarray(encoded[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    if training:
        starts, ends = np.zeros(windows, np.int64), np.zeros(windows, np.int64)
        for w in range(windows):
            example = examples[example_index[w]]
            if example.is_impossible or not example.answers:
                continue
            answer = example.answers[0]
            begin = int(answer["answer_start"])
            starts[w], ends[w] = _answer_tokens(offsets[w], begin, begin + len(answer["text"]))
        arrays["start_positions"], arrays["end_positions"] = starts, ends
    return SquadFeatures(arrays, example_index, offsets, skipped)


# ------------------------------------------------------------------------------------ post-processing
def _softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def _window_candidates(start: np.ndarray, end: np.ndarray, offsets: list, settings: SquadSettings):
    """(score, start_logit, end_logit, char_start, char_end) for the best valid spans of one window."""
    top_starts = np.argsort(start)[::-1][: settings.n_best_size]
    top_ends = np.argsort(end)[::-1][: settings.n_best_size]
    for s in top_starts:
        if s >= len(offsets) or offsets[s] is None:
            continue
        for e in top_ends:
            if e >= len(offsets) or offsets[e] is None or e < s or e - s + 1 > settings.max_answer_length:
                continue
            yield float(start[s] + end[e]), float(start[s]), float(end[e]), offsets[s][0], offsets[e][1]


def postprocess_predictions(examples: Sequence[SquadExample], features: SquadFeatures, start_logits: np.ndarray,
                            end_logits: np.ndarray, settings: SquadSettings):
    """Answer text per question id, the n-best lists, and (v2.0) null-score differences.

    The null score of a question is the lowest <cls> score over its windows; with v2.0 the answer is ""
    when null score - best span score exceeds `null_score_diff_threshold` (the official null_odds value).
    """
    by_example: dict[int, list[int]] = collections.defaultdict(list)
    for window, example in enumerate(features.example_index):
        by_example[int(example)].append(window)
    predictions: dict[str, str] = {}
    nbest_all: dict[str, list[dict[str, Any]]] = {}
    null_odds: dict[str, float] = {}
    for index, example in enumerate(examples):
        windows = by_example.get(index)
        if not windows:
            continue  # skipped at feature time; counted as missing by the evaluation
        candidates, null_score, null_logits = [], math.inf, (0.0, 0.0)
        for w in windows:
            window_null = float(start_logits[w][0] + end_logits[w][0])
            if window_null < null_score:
                null_score, null_logits = window_null, (float(start_logits[w][0]), float(end_logits[w][0]))
            candidates.extend(_window_candidates(start_logits[w], end_logits[w], features.offsets[w], settings))
        seen, unique = set(), []
        for cand in sorted(candidates, key=lambda c: c[0], reverse=True):
            text = example.context[cand[3]: cand[4]]
            if text not in seen:
                seen.add(text)
                unique.append((cand[0], cand[1], cand[2], text))
            if len(unique) >= settings.n_best_size:
                break
        if settings.version_2_with_negative:
            unique.append((null_score, *null_logits, ""))
            unique.sort(key=lambda c: c[0], reverse=True)
        if not unique:
            unique = [(0.0, 0.0, 0.0, "")]
        probs = _softmax(np.array([c[0] for c in unique]))
        nbest_all[example.qas_id] = [{"text": t, "probability": float(p), "start_logit": s, "end_logit": e}
                                     for (_, s, e, t), p in zip(unique, probs)]
        best_span = next((c for c in unique if c[3]), None)
        if not settings.version_2_with_negative:
            predictions[example.qas_id] = best_span[3] if best_span else ""
            continue
        diff = null_score - (best_span[0] if best_span else -math.inf)
        null_odds[example.qas_id] = float(diff) if math.isfinite(diff) else 1e9
        predictions[example.qas_id] = "" if best_span is None or diff > settings.null_score_diff_threshold else best_span[3]
    return predictions, nbest_all, null_odds


def write_prediction_files(out_dir: str | Path, predictions: dict, nbest: dict, null_odds: dict | None) -> list[Path]:
    out_dir = Path(out_dir)
    files = [(PREDICTIONS_FILE, predictions), (NBEST_FILE, nbest)]
    if null_odds is not None:
        files.append((NULL_ODDS_FILE, null_odds))
    written = []
    for name, payload in files:
        atomic_write_text(out_dir / name, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        written.append(out_dir / name)
    return written


# ------------------------------------------------------------------------------------- train / predict
def _features_dataset(features: SquadFeatures, with_labels: bool) -> ArrayDataset:
    keys = ("input_ids", "attention_mask", "token_type_ids") + (("start_positions", "end_positions") if with_labels else ())
    return ArrayDataset({k: features.arrays[k] for k in keys})


def _score(gold: list[dict[str, Any]], predictions: dict, null_odds: dict, settings: SquadSettings) -> dict[str, float]:
    """Official scores of `predictions` against `gold` (the file's `data` list)."""
    return squad_evaluate(gold, predictions, null_odds if settings.version_2_with_negative else None)


def train_squad(train_file: str, dev_file: str | None, args: TrainingArguments, model: str,
                settings: SquadSettings, tokenizer: str | None = None, train_vocab: int = 0,
                ignore_mismatched_sizes: bool = False, init: str = PRETRAINED,
                revision: str | None = None) -> dict[str, Any]:
    """Fine-tune `model` (a directory or hub name at `revision`), or with init="random" train from scratch in
    its shape (also a preset or config file); keep the best dev-F1 checkpoint in `<out>/best`, return a summary."""
    check_run_directory(args, (train_file, dev_file, model, tokenizer))  # before any work
    train = read_squad(train_file, training=True)  # its read report is logged by the reader
    corpus = [t for e in train.examples for t in (e.question, e.context)]
    tok = resolve_tokenizer(model, tokenizer, train_vocab, corpus, init, revision)
    net = build_model(FunnelForQuestionAnswering, model, tok, ignore_mismatched_sizes, seed=args.seed, init=init,
                      revision=revision, num_labels=2)
    train_features = build_features(train.examples, tok, settings, training=True)
    dev = read_squad(dev_file) if dev_file else None
    dev_features = build_features(dev.examples, tok, settings) if dev else None
    dev_gold = load_squad_dataset_for_eval(dev_file) if dev else None
    logger.info("SQuAD: %d training questions -> %d windows%s", len(train.examples), len(train_features),
                f"; {len(dev.examples)} dev questions -> {len(dev_features)} windows" if dev else "")

    def compute_metrics(outputs: dict[str, np.ndarray]) -> dict[str, float]:
        predictions, _, null_odds = postprocess_predictions(dev.examples, dev_features, outputs["start_logits"],
                                                            outputs["end_logits"], settings)
        return _score(dev_gold, predictions, null_odds, settings)

    sidecar = partial(save_sidecar, tokenizer=tok, settings_file=SQUAD_SETTINGS_FILE, settings=asdict(settings))
    trainer = Trainer(net, args, _features_dataset(train_features, True),
                      _features_dataset(dev_features, False) if dev else None,
                      compute_metrics if dev else None, main_metric="f1", prediction_keys=QA_OUTPUTS,
                      save_extra=sidecar)
    result = trainer.train()
    summary = {"steps": result.global_step, "best_step": result.best_step, "best_f1": result.best_metric,
               "final_metrics": result.final_metrics, "train_questions": len(train.examples),
               "train_windows": len(train_features)}
    if trainer.is_main:
        write_results(args.output_dir, summary)
    return summary


def load_settings(model_dir: str | Path, **overrides: Any) -> SquadSettings:
    """The settings saved beside a model (defaults when there are none), then the overrides that are not None."""
    path = Path(model_dir) / SQUAD_SETTINGS_FILE
    saved = read_json_object(path, "SQuAD settings file") if path.is_file() else {}
    unknown = sorted(set(saved) - {f.name for f in fields(SquadSettings)})
    if unknown:
        raise InputError(f"{path}: unknown SQuAD settings {unknown}; known: "
                         f"{[f.name for f in fields(SquadSettings)]}")
    return SquadSettings(**{**saved, **{k: v for k, v in overrides.items() if v is not None}})


def predict_squad(data_file: str, model_dir: str, out_dir: str, batch_size: int = 64,
                  **setting_overrides: Any) -> dict[str, Any]:
    """Write predictions.json, nbest_predictions.json (and null_odds.json for v2.0); score them if answers exist."""
    check_output_dir(out_dir, what="prediction directory", inputs=(data_file, model_dir), previous=())
    settings = load_settings(model_dir, **setting_overrides)
    data = read_squad(data_file)
    model = FunnelForQuestionAnswering.from_pretrained(model_dir)
    tokenizer = FunnelTokenizer.from_pretrained(model_dir)
    features = build_features(data.examples, tokenizer, settings)
    outputs = predict_arrays(model, _features_dataset(features, False), QA_OUTPUTS, batch_size, *init_distributed())
    predictions, nbest, null_odds = postprocess_predictions(data.examples, features, outputs["start_logits"],
                                                            outputs["end_logits"], settings)
    written = write_prediction_files(out_dir, predictions, nbest,
                                     null_odds if settings.version_2_with_negative else None)
    result: dict[str, Any] = {"questions": len(data.examples), "windows": len(features),
                              "files": [str(p) for p in written], "skipped": features.skipped}
    if any(e.answers or e.is_impossible for e in data.examples):
        result["metrics"] = _score(load_squad_dataset_for_eval(data_file), predictions, null_odds, settings)
    return result
