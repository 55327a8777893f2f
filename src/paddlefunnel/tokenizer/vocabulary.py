"""Training a WordPiece vocabulary with the Rust trainer, deterministically, from corpus files or texts."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, pre_tokenizers, trainers
from tokenizers.models import WordPiece

from ..errors import InputError, MissingFileError
from ..io_utils import not_utf8_error
from .checks import check_int, type_name
from .pipeline import bert_normalizer
from .specials import DEFAULT_SPECIAL_TOKENS, TRAINED_SPECIAL_ORDER

DEFAULT_TRAINED_MAX_LENGTH = 512  # the sequence length the released Funnel checkpoints were pre-trained with

# Runs the trainer over a corpus: feed(backend, trainer); see file_corpus and text_corpus.
Feed = Callable[[Tokenizer, trainers.WordPieceTrainer], None]


def file_corpus(files: Any) -> Feed:
    """The corpus of `FunnelTokenizer.train`: existing files, not all of them empty."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    if not isinstance(files, Sequence) or not files:
        raise InputError(f"files must be a path or a non-empty list of paths, got {files!r}")
    paths = []
    for item in files:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"files must contain paths, got {type_name(item)}")
        path = Path(item)
        if not path.is_file():
            raise MissingFileError(f"{path}: corpus file not found")
        paths.append(str(path))
    if all(Path(p).stat().st_size == 0 for p in paths):
        raise InputError(f"corpus files {paths} are all empty; expected text to learn a vocabulary from")

    def feed(backend: Tokenizer, trainer: trainers.WordPieceTrainer) -> None:
        try:
            backend.train(paths, trainer)
        except Exception as err:  # tokenizers raises a bare Exception ("stream did not contain valid UTF-8")
            # the files are scanned only after the trainer failed, so a good corpus is read once
            raise next(filter(None, map(not_utf8_error, paths)), err) from None

    return feed


def text_corpus(texts: Any) -> Feed:
    """The in-memory corpus of `FunnelTokenizer.train_from_iterator`, as a list (training reads it twice)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be an iterable of str (a list of documents), got {type_name(texts)}")
    texts = list(texts)  # a one-shot iterator is materialised
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type_name(text)}")
    if not any(text.strip() for text in texts):
        raise InputError("texts contains no non-whitespace text; expected a corpus to learn a vocabulary from")

    def feed(backend: Tokenizer, trainer: trainers.WordPieceTrainer) -> None:
        backend.train_from_iterator(texts, trainer, length=len(texts))

    return feed


def check_training_arguments(vocab_size: Any, min_frequency: Any, limit_alphabet: Any, options: dict) -> list[str]:
    """The special tokens (in their trained order, ids 0-6) after checking the numbers; they must be distinct."""
    check_int("vocab_size", vocab_size, len(TRAINED_SPECIAL_ORDER) + 1)
    check_int("min_frequency", min_frequency, 0)
    check_int("limit_alphabet", limit_alphabet, 1)
    specials = [options.get(name, DEFAULT_SPECIAL_TOKENS[name]) for name in TRAINED_SPECIAL_ORDER]
    if len(set(specials)) != len(specials):
        raise InputError(f"the special tokens must be distinct, got {specials}")
    return specials


def train_wordpiece(
    feed: Feed,
    specials: list[str],
    vocab_size: int,
    min_frequency: int,
    limit_alphabet: int,
    show_progress: bool,
    options: dict[str, Any],
) -> dict[str, int]:
    """Two passes because the Rust trainer numbers `##x` pieces in hash order, which changes merge tie-breaks.

    Pass 1 (no merges) lists the continuation pieces; pass 2 registers them, sorted, right after the specials,
    which fixes every id and therefore the learned vocabulary. `options` are the tokenizer's (normaliser, prefix).
    """
    prefix = options.get("wordpieces_prefix", "##")
    unk_token = specials[TRAINED_SPECIAL_ORDER.index("unk_token")]

    def run(size: int, seeds: list[str]) -> dict[str, int]:
        backend = _training_backend(unk_token, prefix, options)
        trainer = trainers.WordPieceTrainer(
            vocab_size=size,
            min_frequency=min_frequency,
            show_progress=show_progress,
            special_tokens=specials + seeds,
            limit_alphabet=limit_alphabet,
            continuing_subword_prefix=prefix,
        )
        feed(backend, trainer)
        return backend.get_vocab(with_added_tokens=False)

    pieces = run(0, [])
    seeds = sorted(t for t in pieces if t.startswith(prefix) and t not in specials)
    vocab = run(vocab_size, seeds)
    if len(vocab) < vocab_size:
        warnings.warn(  # stacklevel: here <- FunnelTokenizer._trained <- train / train_from_iterator <- caller
            f"the corpus only supports {len(vocab)} tokens (asked for vocab_size={vocab_size}); "
            "add text or lower min_frequency for a bigger vocabulary",
            stacklevel=4,
        )
    return vocab


def _training_backend(unk_token: str, prefix: str, options: dict[str, Any]) -> Tokenizer:
    """An empty WordPiece model behind the tokenizer's normaliser and pre-tokeniser, for the trainer to fill."""
    backend = Tokenizer(WordPiece(unk_token=unk_token, continuing_subword_prefix=prefix))
    backend.normalizer = bert_normalizer(
        options.get("clean_text", True),
        options.get("tokenize_chinese_chars", True),
        options.get("strip_accents"),
        options.get("do_lower_case", True),
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return backend
