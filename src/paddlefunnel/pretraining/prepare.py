"""`prepare_corpus`: raw text -> packed, fixed-length pretraining examples in memory-mapped shards.

What the authors' builder does (laiguokun/Funnel-Transformer, `tensorflow/create_pretrain_data.py`), and what is
followed here:
- it tokenises every line as a sentence, drops documents with no tokens, shuffles the documents with a fixed seed
  and concatenates them into one token stream whose sentence ids alternate (so document ends are sentence
  boundaries, and examples run across documents: no padding);
- each example is `<cls> A <sep> B <sep>` of exactly `seq_len` tokens, with token types `<cls>`:2, A+`<sep>`:0,
  B+`<sep>`:1; the split point between A and B is drawn at random among the sentence boundaries inside the
  example. Followed.

What is changed, and why:
- Streaming. The authors hold the whole shuffled corpus in memory; here documents are shuffled within a bounded
  buffer (`shuffle_buffer_tokens`), tokenised in batches by the Rust backend (parallel, in a background thread,
  overlapped with packing) and rows go to fixed-size shard buffers written as they fill, so memory does not grow
  with the corpus. Documents longer than 1 MiB are shuffled as consecutive parts (see `text.py`).
- No negative pairs and no dropped tokens. Half of the authors' examples pair A with a random B from elsewhere
  (a next-sentence label their own input pipeline never reads: `input_func_builder.py` parses only the ids, the
  segment ids and the word boundaries), and their truncation drops the overflow of the last sentence. Here every
  example takes the next `max_seq_length - 3` tokens of the stream, so no token is lost or repeated: an example
  may start inside a sentence that the previous one cut. When the window holds no sentence boundary, the split
  point is a random token position instead.
- The last example of the corpus is padded (`<pad>`, attention mask 0): the only padding, where the stream ran out.
  A rest of one single token cannot make both segments and is dropped: the only dropped token (counted in the
  manifest as `dropped_tokens`).
- Optional, `within_documents=True` (`--within-documents`): no example mixes two documents; each document's last
  window is padded (a one-token rest dropped) instead of continuing into the next document, so segments A and B
  always come from the same document (as in BERT's builder). Why: when documents are short next to the
  sequence length, most continuous-stream examples span two documents, and the split point often puts them in
  different segments; the pretrained attention then learns to prefer its own segment, which sentence-pair tasks
  (a question in A, its answer in B) have to unlearn. Measured on the built-in corpus (documents of ~68 words,
  seq 64; benchmarks/RESULTS.md "Pretraining"): the ELECTRA discriminator fine-tuned on 10% of the synthetic QNLI
  task went from below the same model from scratch to clearly above it. The price is padding (30% of the token
  slots there; nothing for documents much longer than the sequence).
- Word boundaries (their `boundary` feature, for whole-word and span masking) are not stored: they follow from
  the ids (a WordPiece continuation starts with `##`), for whoever masks whole words.
- A held-out eval split: the first N examples (`eval_examples=N`), or every k-th example
  (`eval_examples=fraction`, k = round(1 / fraction)), chosen as the rows are produced.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from ..io_utils import atomic_directory, atomic_write_text, check_output_dir, read_json_object
from ..tokenizer import FunnelTokenizer
from .builtin import BUILTIN_CORPUS_NAME, BUILTIN_VERSION, DEFAULT_BUILTIN_BYTES, write_builtin_corpus
from .shards import (
    FORMAT_VERSION,
    INDEX_FILE,
    MANIFEST_FILE,
    TOKENIZER_DIR,
    ShardWriter,
    ids_dtype,
    require_mask_token,
    special_ids,
    tokenizer_fingerprint,
)
from .text import CorpusReader, Document, check_corpus_files, file_sha256

logger = logging.getLogger("paddlefunnel")

DEFAULT_EVAL_EXAMPLES = 0.01  # every 100th example
DEFAULT_SHUFFLE_BUFFER_TOKENS = 1 << 20
SHARD_TOKENS = 1 << 22  # rows per shard = this // max_seq_length (8 MB of uint16 ids)
BATCH_LINES = 4096  # lines per call of the Rust tokenizer
_QUEUE_BATCHES = 4  # tokenised batches waiting for the packer (bounded memory)


# ---------------------------------------------------------------------------------------------- settings
def parse_eval_examples(value: Any) -> int | float:
    """N >= 0 examples (an int, or a str of one) or a fraction in (0, 1)."""
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise InputError(f"eval examples: expected a count or a fraction in (0, 1), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"eval examples: expected a count or a fraction in (0, 1), got {value!r}")
    if isinstance(value, float) and not 0 < value < 1:
        raise InputError(f"eval examples: a fraction must lie in (0, 1), got {value}")
    if isinstance(value, int) and value < 0:
        raise InputError(f"eval examples: a count must be >= 0, got {value}")
    return value


def check_max_seq_length(max_seq_length: Any) -> int:
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 8:
        raise InputError(f"max_seq_length must be an int >= 8 (<cls> A <sep> B <sep> needs room), "
                         f"got {max_seq_length!r}")
    return max_seq_length


# ---------------------------------------------------------------------------------------------- tokenising
@dataclass
class TokenizedDocument:
    tokens: np.ndarray  # int32 ids of the document's text, sentences concatenated
    starts: np.ndarray  # bool: True where a sentence starts


def tokenize_documents(documents: Sequence[Document], tokenizer: FunnelTokenizer) -> list[TokenizedDocument]:
    """One call of the Rust backend for all sentences of `documents` (no special tokens, no truncation); empty
    documents are dropped, as the authors' builder does."""
    lines = [sentence for document in documents for sentence in document.sentences]
    encoded = tokenizer(lines, add_special_tokens=False, return_token_type_ids=False,
                        return_attention_mask=False, verbose=False)["input_ids"]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32, count=int(lengths.sum()))
    starts = np.zeros(len(flat), dtype=bool)
    offsets = np.cumsum(lengths) - lengths
    starts[offsets[lengths > 0]] = True
    result, line, token = [], 0, 0
    for document in documents:
        count = int(lengths[line:line + len(document.sentences)].sum())
        if count:
            # copies, not views: a view would keep its whole batch alive while the shuffle buffer holds it
            result.append(TokenizedDocument(flat[token:token + count].copy(), starts[token:token + count].copy()))
        line += len(document.sentences)
        token += count
    return result


def _document_batches(reader: CorpusReader) -> Iterator[list[Document]]:
    batch, lines = [], 0
    for document in reader.documents():
        batch.append(document)
        lines += len(document.sentences)
        if lines >= BATCH_LINES:
            yield batch
            batch, lines = [], 0
    if batch:
        yield batch


class _Producer(threading.Thread):
    """Reads and tokenises in the background (the Rust encoder releases the GIL) while the caller packs and
    writes; at most `_QUEUE_BATCHES` batches wait, so memory stays bounded. Errors reach the consumer."""

    _DONE = object()

    def __init__(self, reader: CorpusReader, tokenizer: FunnelTokenizer) -> None:
        super().__init__(daemon=True, name="paddlefunnel-tokenize")
        self.reader = reader
        self.tokenizer = tokenizer
        self.queue: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for batch in _document_batches(self.reader):
                if not self._put((tokenize_documents(batch, self.tokenizer), self.reader.stats.bytes_done)):
                    return
            self._put(self._DONE)
        except BaseException as err:  # handed to the consumer, which raises it
            self._put(err)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def results(self) -> Iterator[tuple[list[TokenizedDocument], int]]:
        self.start()
        try:
            while True:
                item = self.queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop.set()
            self.join()


# ---------------------------------------------------------------------------------------------- shuffling
class DocumentShuffler:
    """Shuffles documents within a buffer of at most `budget` tokens (the authors shuffle the whole corpus in
    memory; this is the streaming version of it). Deterministic for the rng's seed."""

    def __init__(self, budget: int, rng: np.random.Generator) -> None:
        self.budget = budget
        self.rng = rng
        self.buffer: list[TokenizedDocument] = []
        self.tokens = 0

    def add(self, document: TokenizedDocument) -> Iterator[TokenizedDocument]:
        self.buffer.append(document)
        self.tokens += len(document.tokens)
        while self.tokens > self.budget and self.buffer:
            yield self._pop()

    def drain(self) -> Iterator[TokenizedDocument]:
        while self.buffer:
            yield self._pop()

    def _pop(self) -> TokenizedDocument:
        index = int(self.rng.integers(len(self.buffer)))
        self.buffer[index], self.buffer[-1] = self.buffer[-1], self.buffer[index]
        document = self.buffer.pop()
        self.tokens -= len(document.tokens)
        return document


# ---------------------------------------------------------------------------------------------- packing
class Packer:
    """Cuts the stream of documents into `<cls> A <sep> B <sep>` rows of `max_seq_length` tokens (see the module
    docstring for the rules). `add` yields (row, len A, len B) for every full window; `finish` the padded rest."""

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int, rng: np.random.Generator,
                 within_documents: bool = False) -> None:
        self.window = max_seq_length - 3
        self.within_documents = within_documents
        self.cls = np.array([cls_id], dtype=np.int32)
        self.sep = np.array([sep_id], dtype=np.int32)
        self.rng = rng
        self.tokens = np.zeros(0, dtype=np.int32)
        self.starts = np.zeros(0, dtype=bool)
        self.dropped = 0

    def add(self, document: TokenizedDocument) -> Iterator[tuple[np.ndarray, int, int]]:
        if self.within_documents:
            yield from self.finish()  # the previous document's rest: rows never mix two documents
        tokens = np.concatenate([self.tokens, document.tokens])
        starts = np.concatenate([self.starts, document.starts])
        begin = 0
        while len(tokens) - begin >= self.window:
            end = begin + self.window
            yield self._row(tokens[begin:end], starts[begin:end])
            begin = end
        self.tokens, self.starts = tokens[begin:].copy(), starts[begin:].copy()

    def finish(self) -> Iterator[tuple[np.ndarray, int, int]]:
        """The padded last row; a rest of a single token cannot fill both segments and is dropped (counted)."""
        if len(self.tokens) >= 2:
            yield self._row(self.tokens, self.starts)
        else:
            self.dropped += len(self.tokens)
        self.tokens, self.starts = self.tokens[:0], self.starts[:0]

    def _row(self, tokens: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, int, int]:
        cut = self._split_point(starts)
        row = np.concatenate([self.cls, tokens[:cut], self.sep, tokens[cut:], self.sep])
        return row, cut, len(tokens) - cut

    def _split_point(self, starts: np.ndarray) -> int:
        """A random sentence boundary strictly inside the window (A and B both non-empty), else a random token
        position (windows hold at least 2 tokens)."""
        boundaries = np.flatnonzero(starts[1:]) + 1
        if len(boundaries):
            return int(boundaries[self.rng.integers(len(boundaries))])
        return int(self.rng.integers(1, len(starts)))


class SplitRouter:
    """Sends each produced row to the eval or the train writer (see `parse_eval_examples`)."""

    def __init__(self, eval_examples: int | float, train: ShardWriter, held_out: ShardWriter) -> None:
        self.every = max(1, round(1 / eval_examples)) if isinstance(eval_examples, float) else None
        self.first = eval_examples if isinstance(eval_examples, int) else 0
        self.train, self.eval = train, held_out
        self.count = 0

    def add(self, row: np.ndarray, len_a: int, len_b: int) -> None:
        # with a fraction, the k-th, 2k-th, ... rows: a corpus of fewer than k rows trains on all of them
        to_eval = self.count < self.first if self.every is None else self.count % self.every == self.every - 1
        (self.eval if to_eval else self.train).add(row, len_a, len_b)
        self.count += 1


# ---------------------------------------------------------------------------------------------- identity
def _corpus_identity(paths: Sequence[Path], names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}
            for path, name in zip(paths, names)]


def _same_preparation(out_dir: Path, settings: dict, paths: Sequence[Path], names: Sequence[str]) -> dict | None:
    """The existing manifest when `out_dir` already holds this exact preparation (same settings, same corpus
    bytes), else None. Hashes the corpus only when names and sizes already agree."""
    manifest_path = out_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    try:
        manifest = read_json_object(manifest_path, "manifest")
    except InputError:
        return None
    if manifest.get("settings") != settings:
        return None
    recorded = manifest.get("corpus", [])
    quick = [{"name": name, "bytes": path.stat().st_size} for path, name in zip(paths, names)]
    if [{"name": e.get("name"), "bytes": e.get("bytes")} for e in recorded] != quick:
        return None
    return manifest if recorded == _corpus_identity(paths, names) else None


@contextlib.contextmanager
def _corpus_paths(corpus_files: Sequence[str | os.PathLike], builtin_bytes: int) -> Iterator[tuple[list[Path],
                                                                                                      list[str]]]:
    """The files to read and the names the manifest records; "builtin" is written to a temporary file first."""
    if isinstance(corpus_files, (str, os.PathLike)):
        corpus_files = [corpus_files]
    with tempfile.TemporaryDirectory(prefix="paddlefunnel-corpus.") as scratch:
        paths, names = [], []
        for item in corpus_files:
            if str(item) == BUILTIN_CORPUS_NAME:
                path = write_builtin_corpus(Path(scratch) / "builtin.txt", size_bytes=builtin_bytes)
                paths.append(path)
                names.append(f"{BUILTIN_CORPUS_NAME}:v{BUILTIN_VERSION}:{builtin_bytes}")
            else:
                paths.append(Path(item))
                names.append(str(Path(item).resolve()))
        check_corpus_files(paths)
        yield paths, names


# ---------------------------------------------------------------------------------------------- the command
def prepare_corpus(
    corpus_files: Sequence[str | os.PathLike] | str | os.PathLike,
    tokenizer: FunnelTokenizer | None,
    max_seq_length: int,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    eval_examples: int | float | str = DEFAULT_EVAL_EXAMPLES,
    doc_per_file: bool = False,
    skip_bad_lines: bool = False,
    overwrite: bool = False,
    train_vocab: int | None = None,
    builtin_bytes: int = DEFAULT_BUILTIN_BYTES,
    shuffle_buffer_tokens: int = DEFAULT_SHUFFLE_BUFFER_TOKENS,
    within_documents: bool = False,
    show_progress: bool = True,
    other_inputs: Sequence[str | os.PathLike | None] = (),
) -> dict:
    """Prepare `corpus_files` (paths, or "builtin" for the built-in corpus) into the data directory `out_dir`.

    `tokenizer`: a FunnelTokenizer, or None with `train_vocab=SIZE` to train a WordPiece vocabulary on the corpus
    first (saved in `out_dir/tokenizer/`; vocabulary training holds the corpus text in memory, unlike the rest:
    for a big corpus train once with `paddlefunnel vocab train` and pass the result). Returns the manifest, plus
    `"status"`: "prepared", or "unchanged" when `out_dir` already held this exact preparation (same corpus bytes
    and settings: nothing is done). Any other existing `out_dir` is refused (OutputExistsError) unless
    `overwrite`, which always prepares again (also the way to repair a damaged directory). The directory
    appears only when complete; an interrupted run leaves nothing under its name.
    `other_inputs` (e.g. the tokenizer's directory) are, like the corpus files, never replaced or enclosed by it.
    """
    settings = _preparation_settings(tokenizer, train_vocab, max_seq_length, seed, eval_examples, doc_per_file,
                                     skip_bad_lines, shuffle_buffer_tokens, within_documents)
    max_seq_length, eval_examples = settings["max_seq_length"], settings["eval_examples"]
    out_dir = Path(out_dir)
    with _corpus_paths(corpus_files, builtin_bytes) as (paths, names):
        existing = None if overwrite else _same_preparation(out_dir, settings, paths, names)
        if existing is not None:
            logger.info("%s already holds this preparation (same corpus and settings): nothing to do", out_dir)
            return dict(existing, status="unchanged")
        check_output_dir(out_dir, what="data directory", inputs=[*paths, *other_inputs], overwrite=overwrite,
                         hint="use --overwrite to replace it (it holds another preparation, or other files)")
        started = time.perf_counter()
        with atomic_directory(out_dir, "data directory") as staging:
            reader = CorpusReader(paths, doc_per_file=doc_per_file, skip_bad_lines=skip_bad_lines)
            if tokenizer is None:
                tokenizer = _train_vocabulary(paths, train_vocab, doc_per_file, skip_bad_lines, show_progress)
                tokenizer.save_pretrained(staging / TOKENIZER_DIR)
            manifest = _write_shards(reader, tokenizer, max_seq_length, staging, seed, eval_examples,
                                     shuffle_buffer_tokens, within_documents, show_progress)
            manifest.update(settings=settings, corpus=[
                {"name": name, "bytes": path.stat().st_size, "sha256": reader.hashes[str(path)]}
                for path, name in zip(paths, names)])
            manifest["seconds"] = round(time.perf_counter() - started, 3)
            atomic_write_text(staging / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n", "manifest")
    return dict(manifest, status="prepared")


def _preparation_settings(tokenizer: FunnelTokenizer | None, train_vocab: int | None, max_seq_length: Any,
                          seed: Any, eval_examples: Any, doc_per_file: bool, skip_bad_lines: bool,
                          shuffle_buffer_tokens: Any, within_documents: bool) -> dict:
    """The checked arguments that decide the result: with the corpus bytes, a data directory's identity."""
    if (tokenizer is None) == (train_vocab is None):
        raise InputError("give a tokenizer or a vocabulary size to train one (--tokenizer or --train-vocab), "
                         "not both or neither")
    if tokenizer is not None:
        require_mask_token(tokenizer)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an int, got {seed!r}")
    if isinstance(shuffle_buffer_tokens, bool) or not isinstance(shuffle_buffer_tokens, int) \
            or shuffle_buffer_tokens < 0:
        raise InputError(f"shuffle_buffer_tokens must be an int >= 0 (0: keep the document order), "
                         f"got {shuffle_buffer_tokens!r}")
    return {
        "format_version": FORMAT_VERSION,
        "max_seq_length": check_max_seq_length(max_seq_length),
        "seed": seed,
        "eval_examples": parse_eval_examples(eval_examples),
        "doc_per_file": bool(doc_per_file),
        "skip_bad_lines": bool(skip_bad_lines),
        "shuffle_buffer_tokens": shuffle_buffer_tokens,
        "within_documents": bool(within_documents),
        "tokenizer": {"train_vocab": train_vocab} if tokenizer is None else tokenizer_fingerprint(tokenizer),
    }


def _train_vocabulary(paths: Sequence[Path], vocab_size: int, doc_per_file: bool, skip_bad_lines: bool,
                      show_progress: bool) -> FunnelTokenizer:
    reader = CorpusReader(paths, doc_per_file=doc_per_file, skip_bad_lines=skip_bad_lines)
    lines = [sentence for document in reader.documents() for sentence in document.sentences]
    if not lines:
        raise InputError(f"the corpus ({', '.join(map(str, paths))}) holds no text; expected sentences to "
                         "learn a vocabulary from")
    return FunnelTokenizer.train_from_iterator(lines, vocab_size, show_progress=show_progress)


def _write_shards(reader: CorpusReader, tokenizer: FunnelTokenizer, max_seq_length: int, staging: Path, seed: int,
                  eval_examples: int | float, shuffle_buffer_tokens: int, within_documents: bool,
                  show_progress: bool) -> dict:
    """Stream, tokenise, shuffle, pack and write; returns the manifest's counts (without settings/corpus)."""
    ids = special_ids(tokenizer)
    dtype = ids_dtype(len(tokenizer))
    rows_per_shard = max(1, SHARD_TOKENS // max_seq_length)
    writers = {split: ShardWriter(staging, split, max_seq_length, dtype, rows_per_shard, ids["pad"])
               for split in ("train", "eval")}
    router = SplitRouter(eval_examples, writers["train"], writers["eval"])
    shuffler = DocumentShuffler(shuffle_buffer_tokens, np.random.default_rng([seed, 1]))
    packer = Packer(max_seq_length, ids["cls"], ids["sep"], np.random.default_rng([seed, 2]),
                    within_documents)
    def pack(documents: Iterable[TokenizedDocument]) -> None:
        for document in documents:
            for row in packer.add(document):
                router.add(*row)

    text_tokens = 0
    with tqdm(total=reader.total_bytes, unit="B", unit_scale=True, desc="prepare", dynamic_ncols=True,
              disable=not show_progress) as progress, \
            contextlib.closing(_Producer(reader, tokenizer).results()) as tokenized:  # closing stops the thread
        for documents, bytes_done in tokenized:
            text_tokens += sum(len(document.tokens) for document in documents)
            for document in documents:
                pack(shuffler.add(document))
            progress.update(bytes_done - progress.n)
        pack(shuffler.drain())
        for row in packer.finish():
            router.add(*row)
        progress.update(reader.stats.bytes_done - progress.n)
    _check_counts(reader, text_tokens, writers, eval_examples, packer.dropped)
    for writer in writers.values():
        writer.flush()
    index = {"format_version": FORMAT_VERSION,
             "splits": {split: writer.shards for split, writer in writers.items()}}
    atomic_write_text(staging / INDEX_FILE, json.dumps(index, indent=2) + "\n", "shard index")
    stats = reader.stats
    if stats.bad_lines:
        first = ", ".join(f"{s.path} line {s.line}" for s in stats.skipped)
        logger.info("skipped %d line(s) that are not UTF-8 (first: %s)", stats.bad_lines, first)
    return {
        "format_version": FORMAT_VERSION,
        "max_seq_length": max_seq_length,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "vocab_size": len(tokenizer),
        "special_ids": ids,
        "ids_dtype": dtype.name,
        "seed": seed,
        "splits": {split: writer.rows for split, writer in writers.items()},
        "counts": {"documents": stats.documents, "lines": stats.lines, "bad_lines": stats.bad_lines,
                   "text_tokens": text_tokens, "dropped_tokens": packer.dropped,
                   "padding": sum(w.rows for w in writers.values()) * max_seq_length
                   - sum(w.tokens for w in writers.values())},
        "tokenizer_dir": TOKENIZER_DIR if (staging / TOKENIZER_DIR).is_dir() else None,
    }


def _check_counts(reader: CorpusReader, text_tokens: int, writers: dict[str, ShardWriter],
                  eval_examples: int | float, dropped: int) -> None:
    names = ", ".join(map(str, reader.files))
    if text_tokens == 0:
        raise InputError(f"the corpus ({names}) holds no tokens: every file is empty, blank"
                         + (" or skipped as not UTF-8" if reader.stats.bad_lines else "")
                         + "; expected text, one sentence per line")
    if text_tokens == dropped:
        raise InputError(f"the corpus ({names}) holds a single token; an example needs at least two")
    if writers["train"].rows == 0:
        total = writers["eval"].rows
        raise InputError(f"the corpus ({names}) gives only {total} example(s) and the eval split takes "
                         f"{eval_examples!r} of them, leaving none to train on; give more text or fewer eval "
                         "examples")
