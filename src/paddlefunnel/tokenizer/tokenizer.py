"""FunnelTokenizer: the public class. It holds the options and the Rust pipeline and composes the other modules:
files (loading/saving), vocabulary (training), strategies (padding/truncation), encoding and decoding."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ..hub import TOKENIZER, resolve_pretrained
from ..errors import InputError
from .checks import check_int, check_side, is_int, type_name
from .decoding import as_numpy, ids_list, is_batch, raise_not_int
from .encoding import (
    BatchEncoding,
    collect_outputs,
    encode_batch,
    prepare_inputs,
    to_tensors,
    unbatched,
    warn_if_too_long,
    with_windows,
)
from .files import read_pretrained, read_vocab_file, write_pretrained
from .pipeline import CLS_TOKEN_TYPE_ID, PAD_TOKEN_TYPE_ID, bert_normalizer, build_backend
from .specials import SPECIAL_TOKEN_ATTRIBUTES, check_special_tokens
from .strategies import (
    VERY_LARGE_INTEGER,
    BackendSettings,
    check_call_arguments,
    check_stride,
    padding_settings,
    resolve_strategies,
    truncation_settings,
)
from .vocabulary import (
    DEFAULT_TRAINED_MAX_LENGTH,
    Feed,
    check_training_arguments,
    file_corpus,
    text_corpus,
    train_wordpiece,
)


class FunnelTokenizer:
    """WordPiece tokenizer for Funnel-Transformer: the reference's ids, offsets and windows at Rust speed.

    Build it with `from_pretrained(dir)`, `train(files, vocab_size)` / `train_from_iterator(texts, vocab_size)`, or
    directly from a `vocab.txt` path or a token -> id mapping.
    """

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    cls_token_type_id = CLS_TOKEN_TYPE_ID
    pad_token_type_id = PAD_TOKEN_TYPE_ID

    def __init__(
        self,
        vocab: str | os.PathLike | Mapping[str, int],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        clean_text: bool = True,
        wordpieces_prefix: str = "##",
        max_input_chars_per_word: int = 100,
        unk_token: str = "<unk>",
        sep_token: str = "<sep>",
        pad_token: str = "<pad>",
        cls_token: str = "<cls>",
        mask_token: str = "<mask>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        model_max_length: int = VERY_LARGE_INTEGER,
        padding_side: str = "right",
        truncation_side: str = "right",
    ) -> None:
        vocab, source = _vocabulary(vocab)
        _check_options(
            do_lower_case=do_lower_case,
            strip_accents=strip_accents,
            tokenize_chinese_chars=tokenize_chinese_chars,
            clean_text=clean_text,
            wordpieces_prefix=wordpieces_prefix,
            max_input_chars_per_word=max_input_chars_per_word,
            model_max_length=model_max_length,
            padding_side=padding_side,
            truncation_side=truncation_side,
        )
        specials = {
            "unk_token": unk_token,
            "sep_token": sep_token,
            "pad_token": pad_token,
            "cls_token": cls_token,
            "mask_token": mask_token,
            "bos_token": bos_token,
            "eos_token": eos_token,
        }
        check_special_tokens(specials, vocab, source)

        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text
        self.wordpieces_prefix = wordpieces_prefix
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.model_max_length = int(model_max_length)
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self._specials = specials
        self._backend = build_backend(
            vocab,
            specials,
            wordpieces_prefix=wordpieces_prefix,
            max_input_chars_per_word=self.max_input_chars_per_word,
            normalizer=bert_normalizer(clean_text, tokenize_chinese_chars, strip_accents, do_lower_case),
        )
        self._special_ids = {name: self._backend.token_to_id(token) for name, token in specials.items()}
        self._all_special_ids = frozenset(self._special_ids.values())
        self._settings = BackendSettings(self._backend, self.pad_token_id, self.pad_token)

    # ------------------------------------------------------------------------------------------- files
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        **overrides: Any) -> FunnelTokenizer:
        """Load a directory with `vocab.txt` or `tokenizer.json` (+ `tokenizer_config.json`), either file itself,
        or a hub repo id (`org/name` at `revision`: from the HuggingFace cache, else its tokenizer files are
        downloaded; see `paddlefunnel.hub`).

        `tokenizer.json` wins over `vocab.txt` (as in transformers); options come from `tokenizer_config.json`,
        then `special_tokens_map.json` and the normaliser stored in `tokenizer.json`, then the defaults; keyword
        arguments override them all.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type_name(path)}")
        local = resolve_pretrained(path, revision=revision, parts=(TOKENIZER,), cache_dir=cache_dir,
                                   local_files_only=local_files_only)
        vocab, options, source = read_pretrained(local)
        options.update(overrides)
        try:
            return cls(vocab, **options)
        except ValueError as err:
            raise InputError(str(err).replace("the vocab mapping", source)) from None

    def save_pretrained(self, directory: str | os.PathLike) -> tuple[Path, Path, Path]:
        """Write vocab.txt, tokenizer.json and tokenizer_config.json (each atomically) for us and transformers."""
        config = {
            "tokenizer_class": "FunnelTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "clean_text": self.clean_text,
            "wordpieces_prefix": self.wordpieces_prefix,
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            **self.special_tokens_map,
        }
        return write_pretrained(Path(directory), self._backend, config)

    # ------------------------------------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        files: str | os.PathLike | Sequence[str | os.PathLike],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        show_progress: bool = True,
        **options: Any,
    ) -> FunnelTokenizer:
        """Train a WordPiece vocabulary on text files (one or more documents per file, read line by line).

        The Funnel specials take ids 0-6 (`<pad> <unk> <cls> <sep> <mask> <s> </s>`); `options` are the constructor's
        (do_lower_case, strip_accents, ..., model_max_length, default 512). Training is deterministic.
        """
        return cls._trained(file_corpus(files), vocab_size, min_frequency, limit_alphabet, show_progress, options)

    @classmethod
    def train_from_iterator(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        show_progress: bool = True,
        **options: Any,
    ) -> FunnelTokenizer:
        """Train from in-memory texts (e.g. the demo's built-in corpus); same result as `train` on the same lines."""
        return cls._trained(text_corpus(texts), vocab_size, min_frequency, limit_alphabet, show_progress, options)

    @classmethod
    def _trained(
        cls,
        feed: Feed,
        vocab_size: int,
        min_frequency: int,
        limit_alphabet: int,
        show_progress: bool,
        options: dict[str, Any],
    ) -> FunnelTokenizer:
        """Check every argument and option before the (slow) training, then build on the learned vocabulary."""
        specials = check_training_arguments(vocab_size, min_frequency, limit_alphabet, options)
        options.setdefault("model_max_length", DEFAULT_TRAINED_MAX_LENGTH)
        cls({token: index for index, token in enumerate(specials)}, **options)  # bad options fail before training
        vocab = train_wordpiece(feed, specials, vocab_size, min_frequency, limit_alphabet, show_progress, options)
        return cls(vocab, **options)

    # ------------------------------------------------------------------------------------------- vocabulary
    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The Rust `tokenizers.Tokenizer`, for advanced use; calls on this tokenizer set its truncation/padding."""
        self._settings.forget()  # the caller may change them: re-set on the next call
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the WordPiece vocabulary, without specials appended after it."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def __repr__(self) -> str:
        return (
            f"FunnelTokenizer(vocab_size={len(self)}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
            f"model_max_length={self.model_max_length})"
        )

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: self._specials[name] for name in SPECIAL_TOKEN_ATTRIBUTES}

    @property
    def all_special_tokens(self) -> list[str]:
        return [self._specials[name] for name in SPECIAL_TOKEN_ATTRIBUTES]

    @property
    def all_special_ids(self) -> list[int]:
        return [self._special_ids[name] for name in SPECIAL_TOKEN_ATTRIBUTES]

    unk_token = property(lambda self: self._specials["unk_token"])
    sep_token = property(lambda self: self._specials["sep_token"])
    pad_token = property(lambda self: self._specials["pad_token"])
    cls_token = property(lambda self: self._specials["cls_token"])
    mask_token = property(lambda self: self._specials["mask_token"])
    bos_token = property(lambda self: self._specials["bos_token"])
    eos_token = property(lambda self: self._specials["eos_token"])
    unk_token_id = property(lambda self: self._special_ids["unk_token"])
    sep_token_id = property(lambda self: self._special_ids["sep_token"])
    pad_token_id = property(lambda self: self._special_ids["pad_token"])
    cls_token_id = property(lambda self: self._special_ids["cls_token"])
    mask_token_id = property(lambda self: self._special_ids["mask_token"])
    bos_token_id = property(lambda self: self._special_ids["bos_token"])
    eos_token_id = property(lambda self: self._special_ids["eos_token"])

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Unknown tokens map to the `<unk>` id, as in the reference."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            index = self._backend.token_to_id(tokens)
            return unk if index is None else index
        if not isinstance(tokens, Sequence):
            raise TypeError(f"tokens must be a str or a list of str, got {type_name(tokens)}")
        to_id = self._backend.token_to_id
        try:
            ids = [to_id(token) for token in tokens]
        except TypeError:
            bad = next(t for t in tokens if not isinstance(t, str))
            raise TypeError(f"tokens must contain only str, got {type_name(bad)}") from None
        return [unk if index is None else index for index in ids]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if is_int(ids):
            token = self._backend.id_to_token(int(ids))
            if token is None:
                raise InputError(f"ids={int(ids)} is outside the vocabulary [0, {len(self)})")
            return token
        ids = ids_list(ids, "ids", len(self))
        if skip_special_tokens:
            special = self._all_special_ids
            ids = [i for i in ids if i not in special]
        try:
            return list(map(self._backend.id_to_token, ids))
        except TypeError:
            raise_not_int(ids)

    # ------------------------------------------------------------------------------------------- decoding
    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str | list[str]:
        """Ids back to text (lower-cased, accents stripped: WordPiece cannot restore them); 2-D input -> list[str]."""
        ids = as_numpy(ids)
        if is_int(ids):
            ids = [int(ids)]
        if is_batch(ids):
            return self.batch_decode(ids, skip_special_tokens=skip_special_tokens)
        ids = ids_list(ids, "ids", len(self))
        try:
            return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        except TypeError:
            raise_not_int(ids)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        sequences = as_numpy(sequences)
        if isinstance(sequences, np.ndarray) and sequences.ndim != 2:
            raise TypeError(f"sequences must be 2-D (batch, length), got shape {sequences.shape}")
        if not isinstance(sequences, (list, tuple, np.ndarray)):
            raise TypeError(f"sequences must be a list of id lists or a 2-D array, got {type_name(sequences)}")
        size = len(self)
        checked = [ids_list(seq, f"sequences[{i}]", size) for i, seq in enumerate(sequences)]
        try:
            return self._backend.decode_batch(checked, skip_special_tokens=skip_special_tokens)
        except TypeError:
            raise TypeError("sequences must contain only int ids") from None

    # ------------------------------------------------------------------------------------------- encoding
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """WordPiece tokens of one text (or pair), without padding or truncation."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type_name(text)}")
        if pair is not None and not isinstance(pair, str):
            raise TypeError(f"pair must be a str or None, got {type_name(pair)}")
        self._settings.apply(None, None)
        inputs = [(text, pair)] if pair else [text]  # the reference also drops an empty pair
        return encode_batch(self._backend, inputs, add_special_tokens, "do_not_truncate", None, 0)[0].tokens

    def encode(self, text: str, text_pair: str | None = None, **kwargs: Any) -> list[int]:
        """Input ids of one text (or pair); keyword arguments as for calling the tokenizer."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type_name(text)}")
        return self(text, text_pair, **kwargs)["input_ids"]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode one text/pair or a batch: `<cls> A <sep> [B <sep>]` with token types 2, 0.., 1...

        Strategy rules are the reference's: `max_length` alone turns on longest_first truncation; `padding=True` is
        "longest"; without `max_length`, "max_length" padding and truncation use `model_max_length` (or are off when
        it is unknown). `return_overflowing_tokens` returns every window (`stride` tokens of overlap) plus
        `overflow_to_sample_mapping`. A single text (not a list) gives un-batched lists unless tensors or overflow
        windows are asked for; as in the reference, a single `text_pair=""` counts as no pair.
        """
        batched, inputs = prepare_inputs(text, text_pair)
        padding_strategy, truncation_strategy, max_length = resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of, verbose, self.model_max_length
        )
        check_call_arguments(stride, padding_side, return_tensors)
        if truncation_strategy != "do_not_truncate":
            is_pair = bool(inputs) and isinstance(inputs[0], tuple)
            check_stride(stride, max_length, self.num_special_tokens_to_add(is_pair) if add_special_tokens else 0)
        self._settings.apply(
            truncation_settings(truncation_strategy, max_length, stride, self.truncation_side),
            padding_settings(padding_strategy, max_length, padding_side or self.padding_side, pad_to_multiple_of),
        )
        encodings = encode_batch(self._backend, inputs, add_special_tokens, truncation_strategy, max_length, stride)
        mapping = None
        if return_overflowing_tokens:
            encodings, mapping = with_windows(encodings)
        data = collect_outputs(
            encodings,
            mapping,
            token_type_ids=return_token_type_ids,
            attention_mask=return_attention_mask,
            special_tokens_mask=return_special_tokens_mask,
            offset_mapping=return_offsets_mapping,
            length=return_length,
        )
        if verbose and data["input_ids"]:
            warn_if_too_long(data["input_ids"], max_length, self.model_max_length, truncation_strategy)
        if return_tensors is not None:
            data = to_tensors(data, return_tensors)
        elif not batched and not return_overflowing_tokens:
            data = unbatched(data)
        return BatchEncoding(data, encodings)


# ------------------------------------------------------------------------------------------- constructor checks
def _vocabulary(vocab: Any) -> tuple[dict[str, int], str]:
    """The token -> id mapping from a vocab.txt path or a mapping, and where it came from (for messages)."""
    if isinstance(vocab, (str, os.PathLike)):
        return read_vocab_file(Path(vocab)), str(vocab)
    if not isinstance(vocab, Mapping):
        raise TypeError(f"vocab must be a path to vocab.txt or a token -> id mapping, got {type_name(vocab)}")
    if not vocab:
        raise InputError("vocab: the mapping is empty; expected token -> id entries")
    if not all(isinstance(k, str) for k in vocab) or sorted(vocab.values()) != list(range(len(vocab))):
        raise InputError(f"vocab: expected str tokens with ids 0..{len(vocab) - 1}, each id used once")
    return dict(vocab), "the vocab mapping"


def _check_options(
    *,
    do_lower_case: Any,
    strip_accents: Any,
    tokenize_chinese_chars: Any,
    clean_text: Any,
    wordpieces_prefix: Any,
    max_input_chars_per_word: Any,
    model_max_length: Any,
    padding_side: Any,
    truncation_side: Any,
) -> None:
    for name, value in (
        ("do_lower_case", do_lower_case),
        ("tokenize_chinese_chars", tokenize_chinese_chars),
        ("clean_text", clean_text),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type_name(value)}")
    if strip_accents is not None and not isinstance(strip_accents, bool):
        raise TypeError(f"strip_accents must be a bool or None, got {type_name(strip_accents)}")
    if not isinstance(wordpieces_prefix, str):
        raise TypeError(f"wordpieces_prefix must be a str, got {type_name(wordpieces_prefix)}")
    check_int("max_input_chars_per_word", max_input_chars_per_word, 1)
    check_int("model_max_length", model_max_length, 1)
    check_side("padding_side", padding_side)
    check_side("truncation_side", truncation_side)
