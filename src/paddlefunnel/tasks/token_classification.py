"""Token classification (named entities, chunks, parts of speech): tagged words -> word pieces -> windows ->
per-piece logits -> one tag per word -> seqeval scores; raw text -> entities with character offsets.

Word pieces: each word is split by the model's WordPiece tokenizer; the first piece of a word carries the word's
label and the others are ignored (-100), or, with `label_all_pieces`, every piece carries it (a B- tag becomes
I- on the continuation pieces, so that IOB1/IOB2 stay well formed). A word is always read from its first piece.

Windows: a sentence longer than `max_seq_length - 2` pieces is covered by overlapping windows (`doc_stride`
pieces of overlap, as for SQuAD); nothing is cut. Each word is predicted once, from the window where its first
piece has the most context on both sides. Every window is padded to `max_seq_length`: Funnel's pooling is not
padding-neutral, so fixed-length features keep predictions independent of batching.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.conll import TaggedSentence, detect_tagged_format, read_tagged, tag_label_list
from ..errors import InputError
from ..io_utils import atomic_write_text, check_output_file, read_json_object
from ..metrics.ner import check_scheme, entity_spans, flat_ner_metrics, ner_metrics, split_tag
from ..modeling import FunnelForTokenClassification
from ..modeling.losses import IGNORE_INDEX
from ..registry import TASK_FILE, architecture
from ..tokenizer import FunnelTokenizer
from ..training import ArrayDataset, Trainer, TrainingArguments, init_distributed, predict_arrays
from ..training.rundir import check_run_directory
from .common import PRETRAINED, build_model, resolve_tokenizer, save_sidecar, write_results

logger = logging.getLogger("paddlefunnel")

TASK_NAME = "token_classification"
IGNORE_LABEL = IGNORE_INDEX  # pieces that carry no label: the loss skips them
OUTPUTS = architecture(FunnelForTokenClassification.__name__).outputs  # logits
Arrays = dict[str, np.ndarray]
LogitsFn = Callable[[Arrays], np.ndarray]  # model inputs -> logits [windows, max_seq_length, labels]


@dataclass
class NerSettings:
    """What travels with a token-classification model (in task.json) so it can be evaluated and served alone."""

    label_list: tuple[str, ...]
    scheme: str = "IOB2"
    max_seq_length: int = 128
    doc_stride: int | None = None  # None: a quarter of a window's word pieces
    label_all_pieces: bool = False

    def __post_init__(self) -> None:
        self.label_list = tuple(self.label_list)
        self.doc_stride = check_windows(self.max_seq_length, self.doc_stride)

    @property
    def body_length(self) -> int:
        """Word pieces per window (<cls> and <sep> take two places)."""
        return self.max_seq_length - 2

    def to_json(self) -> dict[str, Any]:
        return {"task": TASK_NAME, **asdict(self), "label_list": list(self.label_list)}

    @classmethod
    def from_json(cls, payload: dict[str, Any], source: str) -> NerSettings:
        if payload.get("task") != TASK_NAME:
            raise InputError(f"{source}: task {payload.get('task')!r}, not {TASK_NAME!r}: this model was not "
                             "trained by `paddlefunnel train ner`")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known - {"task"})
        if unknown:
            raise InputError(f"{source}: unknown token-classification settings {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in payload.items() if k in known})


def check_windows(max_seq_length: int, doc_stride: int | None) -> int:
    """The window overlap for `max_seq_length` (given, or a quarter of a window's word pieces), checked."""
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 3:
        raise InputError(f"max_seq_length={max_seq_length}: a window needs <cls>, at least one word piece and <sep>")
    body = max_seq_length - 2
    stride = body // 4 if doc_stride is None else doc_stride
    if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < body:
        raise InputError(f"doc_stride={doc_stride} must be at least 0 and smaller than the word pieces of a window "
                         f"({body} = max_seq_length - 2)")
    return stride


def load_ner_settings(model_dir: str | Path) -> NerSettings:
    path = Path(model_dir) / TASK_FILE
    if not path.is_file():
        raise InputError(f"{model_dir}: no {TASK_FILE}; expected a directory written by `paddlefunnel train ner`")
    return NerSettings.from_json(read_json_object(path, "task settings file"), str(path))


def training_label_list(tag_sequences: Sequence[Sequence[str]], scheme: str,
                        label_all_pieces: bool) -> tuple[str, ...]:
    """The training tags; with `label_all_pieces`, also the I- tag each B- tag becomes on continuation pieces."""
    sequences = [list(tags) for tags in tag_sequences]
    if label_all_pieces:
        sequences.append([_continuation_tag(tag, scheme) for tags in sequences for tag in tags])
    return tag_label_list(sequences)


def _continuation_tag(tag: str, scheme: str) -> str:
    """The tag of a word's second and later pieces when all pieces are labelled: B-X -> I-X (IOB1, IOB2)."""
    prefix, kind = split_tag(tag)
    return f"I-{kind}" if prefix == "B" and scheme in ("IOB1", "IOB2") else tag


# ------------------------------------------------------------------------------------------- word pieces
def word_piece_ids(tokenizer: FunnelTokenizer, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Per sentence and word, its WordPiece ids. A word the tokenizer drops entirely (e.g. only control
    characters) becomes <unk>, so that every word keeps a place to be predicted from."""
    backend = tokenizer.backend_tokenizer  # pre-split words: the Rust encoder's word ids say which piece is whose
    backend.no_truncation()
    backend.no_padding()
    encodings = backend.encode_batch([list(words) for words in sentences], is_pretokenized=True,
                                     add_special_tokens=False)
    result = []
    for words, encoding in zip(sentences, encodings):
        pieces: list[list[int]] = [[] for _ in words]
        for piece, word in zip(encoding.ids, encoding.word_ids):
            pieces[word].append(piece)
        result.append([ids or [tokenizer.unk_token_id] for ids in pieces])
    return result


# ------------------------------------------------------------------------------------------------ windows
@dataclass
class TokenFeatures:
    """Model inputs for every window, and where each word of each sentence is read from."""

    arrays: Arrays
    window_sentence: np.ndarray  # window -> sentence index
    word_positions: list[list[tuple[int, int]]]  # sentence -> word -> (window, position in the window)
    windows_per_sentence: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.window_sentence)

    def dataset(self, with_labels: bool = True) -> ArrayDataset:
        keys = ("input_ids", "attention_mask", "token_type_ids") + (("labels",) if with_labels else ())
        return ArrayDataset({k: self.arrays[k] for k in keys if k in self.arrays})


def window_starts(num_pieces: int, body: int, doc_stride: int) -> list[int]:
    """Start of every window over `num_pieces` pieces: `body` pieces each, `doc_stride` pieces of overlap."""
    starts = [0]
    while starts[-1] + body < num_pieces:
        starts.append(starts[-1] + body - doc_stride)
    return starts


def _best_window(piece: int, starts: list[int], body: int, num_pieces: int) -> int:
    """Index of the window where `piece` has the most context: the largest distance to the nearer window edge."""
    best, best_score = 0, -1
    for index, start in enumerate(starts):
        end = min(start + body, num_pieces)
        if start <= piece < end:
            score = min(piece - start, end - 1 - piece)
            if score > best_score:
                best, best_score = index, score
    return best


def _piece_labels(tags: Sequence[str] | None, pieces: list[list[int]], settings: NerSettings,
                  index: dict[str, int]) -> list[int]:
    """Per piece of a sentence: the label id it is trained on, or IGNORE_LABEL."""
    labels: list[int] = []
    for w, word_pieces in enumerate(pieces):
        tag = None if tags is None else tags[w]
        for p in range(len(word_pieces)):
            if tag is None or (p > 0 and not settings.label_all_pieces):
                labels.append(IGNORE_LABEL)
            else:
                labels.append(index[tag if p == 0 else _continuation_tag(tag, settings.scheme)])
    return labels


def build_features(sentences: Sequence[TaggedSentence], tokenizer: FunnelTokenizer, settings: NerSettings,
                   with_labels: bool = False) -> TokenFeatures:
    """Fixed-length windows for every sentence; `with_labels`: the label of each piece (see the module doc)."""
    body, length = settings.body_length, settings.max_seq_length
    index = {tag: i for i, tag in enumerate(settings.label_list)}
    all_pieces = word_piece_ids(tokenizer, [s.tokens for s in sentences])
    rows: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "token_type_ids": [], "labels": []}
    window_sentence: list[int] = []
    word_positions: list[list[tuple[int, int]]] = []
    counts: list[int] = []
    for s, (sentence, pieces) in enumerate(zip(sentences, all_pieces)):
        flat = [piece for word in pieces for piece in word]
        labels = _piece_labels(sentence.tags if with_labels else None, pieces, settings, index)
        starts = window_starts(len(flat), body, settings.doc_stride)
        first_window = len(window_sentence)
        for start in starts:
            ids = flat[start:start + body]
            padding = length - len(ids) - 2
            rows["input_ids"].append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
                                     + [tokenizer.pad_token_id] * padding)
            rows["attention_mask"].append([1] * (len(ids) + 2) + [0] * padding)
            rows["token_type_ids"].append([tokenizer.cls_token_type_id] + [0] * (length - 1))
            rows["labels"].append([IGNORE_LABEL, *labels[start:start + body]] + [IGNORE_LABEL] * (padding + 1))
            window_sentence.append(s)
        positions, first_piece = [], 0
        for word in pieces:
            w = _best_window(first_piece, starts, body, len(flat))
            positions.append((first_window + w, first_piece - starts[w] + 1))  # +1: <cls>
            first_piece += len(word)
        word_positions.append(positions)
        counts.append(len(starts))
    arrays = {k: np.asarray(v, dtype=np.int64).reshape(-1, length) for k, v in rows.items()}
    if not with_labels:
        del arrays["labels"]
    return TokenFeatures(arrays, np.asarray(window_sentence, dtype=np.int64), word_positions, counts)


def word_predictions(features: TokenFeatures, logits: np.ndarray,
                     label_list: Sequence[str]) -> tuple[list[list[str]], list[list[float]]]:
    """Per sentence and word: the predicted tag (read where `build_features` placed the word) and its
    probability."""
    tags, probabilities = [], []
    for positions in features.word_positions:
        if not positions:
            tags.append([])
            probabilities.append([])
            continue
        windows, places = zip(*positions)
        rows = logits[list(windows), list(places)].astype(np.float64)
        exp = np.exp(rows - rows.max(axis=-1, keepdims=True))
        probs = exp / exp.sum(axis=-1, keepdims=True)
        best = probs.argmax(-1)
        tags.append([label_list[i] for i in best])
        probabilities.append([float(p) for p in probs[np.arange(len(best)), best]])
    return tags, probabilities


def model_logits(model: FunnelForTokenClassification, batch_size: int = 64) -> LogitsFn:
    """Dynamic-graph logits of `model` for feature arrays (the Predictor runs an exported program instead)."""
    def run(arrays: Arrays) -> np.ndarray:
        keys = ("input_ids", "attention_mask", "token_type_ids")
        data = ArrayDataset({k: arrays[k] for k in keys})
        return predict_arrays(model, data, OUTPUTS, batch_size, *init_distributed())["logits"]
    return run


def predict_tags(sentences: Sequence[TaggedSentence], tokenizer: FunnelTokenizer, settings: NerSettings,
                 logits_fn: LogitsFn) -> tuple[list[list[str]], list[list[float]]]:
    """One tag (and its probability) per word of every sentence."""
    features = build_features(sentences, tokenizer, settings)
    return word_predictions(features, logits_fn(features.arrays), settings.label_list)


# ----------------------------------------------------------------------------------------------- raw text
def split_words(tokenizer: FunnelTokenizer, text: str) -> list[tuple[str, int, int]]:
    """The words of raw text as the tokenizer's basic (pre-)tokenizer splits it: (word, start, end) with
    character offsets into `text`."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans: dict[int, list[int]] = {}
    for word, (start, end) in zip(encoded.word_ids(0), encoded["offset_mapping"]):
        if word is None:
            continue
        span = spans.setdefault(word, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    return [(text[start:end], start, end) for _, (start, end) in sorted(spans.items())]


def tag_texts(texts: Sequence[str], tokenizer: FunnelTokenizer, settings: NerSettings,
              logits_fn: LogitsFn) -> list[list[dict[str, Any]]]:
    """Entities of every raw text: [{"entity": type, "text", "start", "end", "score"}], where `start`/`end` are
    character offsets (text[start:end] == the entity text) and `score` is the mean probability of its words'
    tags."""
    words = [split_words(tokenizer, text) for text in texts]
    usable = [i for i, w in enumerate(words) if w]
    results: list[list[dict[str, Any]]] = [[] for _ in texts]
    if not usable:
        return results
    sentences = [TaggedSentence(str(i), tuple(w for w, _, _ in words[i])) for i in usable]
    tags, probabilities = predict_tags(sentences, tokenizer, settings, logits_fn)
    for i, sentence_tags, probs in zip(usable, tags, probabilities):
        for kind, first, last in entity_spans(sentence_tags):
            start, end = words[i][first][1], words[i][last][2]
            results[i].append({"entity": kind, "text": texts[i][start:end], "start": start, "end": end,
                               "score": float(np.mean(probs[first:last + 1]))})
    return results


# ------------------------------------------------------------------------------------------------ training
def _read(path: str, format: str | None, label_column: int | None, skip_bad_rows: bool,
          label_list: Sequence[str] | None = None, labelled: bool = True):
    return read_tagged(path, format=format, label_column=label_column, label_list=label_list, labelled=labelled,
                       skip_bad_rows=skip_bad_rows)


def train_ner(train_file: str, dev_file: str | None, args: TrainingArguments, model: str, *,
              format: str | None = None, label_column: int | None = None, scheme: str | None = None,
              max_seq_length: int = 128, doc_stride: int | None = None, label_all_pieces: bool = False,
              skip_bad_rows: bool = False, tokenizer: str | None = None, train_vocab: int = 0,
              ignore_mismatched_sizes: bool = False, init: str = PRETRAINED,
              revision: str | None = None) -> dict[str, Any]:
    """Fine-tune `model` (or, with init="random", train from scratch in its shape) on tagged sentences; keep the
    best dev entity-F1 checkpoint in `<out>/best` with its tokenizer and task.json; return a summary."""
    check_run_directory(args, (train_file, dev_file, model, tokenizer))  # before any work
    check_windows(max_seq_length, doc_stride)
    train = _read(train_file, format, label_column, skip_bad_rows)
    scheme = check_scheme(scheme, [s.tags for s in train])
    settings = NerSettings(training_label_list([s.tags for s in train], scheme, label_all_pieces), scheme,
                           max_seq_length, doc_stride, label_all_pieces)
    dev = _read(dev_file, format, label_column, skip_bad_rows, settings.label_list) if dev_file else None
    corpus = [" ".join(s.tokens) for s in train]
    tok = resolve_tokenizer(model, tokenizer, train_vocab, corpus, init, revision)
    net = build_model(FunnelForTokenClassification, model, tok, ignore_mismatched_sizes, seed=args.seed, init=init,
                      revision=revision, num_labels=len(settings.label_list),
                      id2label=dict(enumerate(settings.label_list)))
    train_features = build_features(train, tok, settings, with_labels=True)
    dev_features = build_features(dev, tok, settings) if dev else None
    logger.info("token classification (%s, %d tags): %d training sentences -> %d windows%s", scheme,
                len(settings.label_list), len(train), len(train_features),
                f"; {len(dev)} dev sentences -> {len(dev_features)} windows" if dev else "")

    def compute_metrics(outputs: dict[str, np.ndarray]) -> dict[str, float]:
        predicted, _ = word_predictions(dev_features, outputs["logits"], settings.label_list)
        return flat_ner_metrics([s.tags for s in dev], predicted, scheme)

    trainer = Trainer(net, args, train_features.dataset(), dev_features.dataset(False) if dev else None,
                      compute_metrics if dev else None, main_metric="f1" if dev else "loss",
                      save_extra=partial(save_sidecar, tokenizer=tok, settings_file=TASK_FILE,
                                         settings=settings.to_json()))
    result = trainer.train()
    summary = {"task": TASK_NAME, "scheme": scheme, "labels": list(settings.label_list),
               "steps": result.global_step, "best_step": result.best_step,
               ("best_f1" if dev else "best_loss"): result.best_metric, "stopped_early": result.stopped_early,
               "train_sentences": len(train), "train_windows": len(train_features),
               "dev_sentences": len(dev or []), "skipped_rows": len(train.skipped) + len(dev.skipped if dev else [])}
    if trainer.is_main:
        write_results(args.output_dir, summary)
    return summary


# ------------------------------------------------------------------------------------ evaluate / predict
def load_for_inference(model_dir: str | Path) -> tuple[FunnelForTokenClassification, FunnelTokenizer, NerSettings]:
    settings = load_ner_settings(model_dir)  # first: a directory of another task fails with a clear message
    return FunnelForTokenClassification.from_pretrained(model_dir), FunnelTokenizer.from_pretrained(model_dir), settings


def evaluate_ner(data_file: str, model_dir: str, format: str | None = None, label_column: int | None = None,
                 batch_size: int = 64, skip_bad_rows: bool = False) -> dict[str, Any]:
    """Entity-level precision / recall / F1 (overall and per type) and token accuracy of a trained model on a
    tagged file; its tags must be among the training tags."""
    model, tokenizer, settings = load_for_inference(model_dir)
    data = _read(data_file, format, label_column, skip_bad_rows, settings.label_list)
    predicted, _ = predict_tags(data, tokenizer, settings, model_logits(model, batch_size))
    metrics = ner_metrics([s.tags for s in data], predicted, settings.scheme)
    return {"file": str(data_file), "sentences": len(data), "skipped_rows": len(data.skipped), **metrics}


def _conll_output(sentences: Sequence[TaggedSentence], predicted: list[list[str]]) -> str:
    """token [gold] predicted per line, a blank line after each sentence (conlleval's input layout)."""
    lines = []
    for sentence, tags in zip(sentences, predicted):
        for i, (token, tag) in enumerate(zip(sentence.tokens, tags)):
            gold = f" {sentence.tags[i]}" if sentence.tags is not None else ""
            lines.append(f"{token}{gold} {tag}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _jsonl_output(sentences: Sequence[TaggedSentence], predicted: list[list[str]],
                  probabilities: list[list[float]]) -> str:
    rows = [{"id": s.guid, "tokens": list(s.tokens), "tags": tags, "scores": [round(p, 6) for p in probs]}
            for s, tags, probs in zip(sentences, predicted, probabilities)]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def predict_ner(data_file: str, model_dir: str, output: str, format: str | None = None,
                label_column: int | None = None, output_format: str | None = None,
                batch_size: int = 64) -> dict[str, Any]:
    """Tag every sentence of a CoNLL / JSON-lines file (tags optional) and write the predictions atomically:
    CoNLL (token, gold tag when the input has one, predicted tag) or JSON lines ({"id", "tokens", "tags",
    "scores"}), by `output_format` or the output's extension. Scores them when every input sentence has tags."""
    check_output_file(output, what="predictions file", inputs=(data_file, model_dir))
    out_format = detect_tagged_format(output, output_format)
    model, tokenizer, settings = load_for_inference(model_dir)
    data = _read(data_file, format, label_column, False, labelled=False)
    predicted, probabilities = predict_tags(data, tokenizer, settings, model_logits(model, batch_size))
    text = _conll_output(data, predicted) if out_format == "conll" else _jsonl_output(data, predicted, probabilities)
    atomic_write_text(output, text, "predictions file")
    result: dict[str, Any] = {"sentences": len(data), "words": sum(len(s.tokens) for s in data),
                              "output": str(output), "format": out_format}
    if all(s.tags is not None for s in data):
        result["metrics"] = ner_metrics([s.tags for s in data], predicted, settings.scheme)
    return result
