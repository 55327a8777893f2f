"""Encoding: checking the texts, running the Rust encoder (its errors turned into messages that name arguments),
and shaping its encodings into the model inputs (lists, numpy arrays or paddle tensors)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import paddle
from tokenizers import Tokenizer

from ..errors import InputError
from .checks import type_name

# Outputs that are one number per sequence (not one per token): never padded, so always tensor-shaped.
PER_SEQUENCE_KEYS = ("length", "overflow_to_sample_mapping")


class TokenizerLengthWarning(UserWarning):
    """An encoded sequence is longer than `max_length` (or `model_max_length`) and was not truncated."""


class BatchEncoding(dict):
    """The model inputs as a dict, plus the Rust encodings for token/word/sequence lookups (SQuAD-style labelling)."""

    def __init__(self, data: Mapping[str, Any], encodings: list[Any]) -> None:
        super().__init__(data)
        self.encodings = encodings

    def tokens(self, index: int = 0) -> list[str]:
        return self.encodings[index].tokens

    def sequence_ids(self, index: int = 0) -> list[int | None]:
        """0/1 for tokens of the first/second text, None for specials and padding: locates the context in a window."""
        return self.encodings[index].sequence_ids

    def word_ids(self, index: int = 0) -> list[int | None]:
        return self.encodings[index].word_ids


# ------------------------------------------------------------------------------------------ input texts
def prepare_inputs(text: Any, text_pair: Any) -> tuple[bool, list]:
    """(batched, the backend's inputs: texts or (text, pair) tuples); wrong types name the argument."""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(f"text_pair must be a str (like text) or None, got {type_name(text_pair)}")
        return False, [(text, text_pair)] if text_pair else [text]
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str or a list of str, got {type_name(text)}")
    texts = text if isinstance(text, list) else list(text)
    if not all(isinstance(t, str) for t in texts):
        bad_index, bad = next((i, t) for i, t in enumerate(texts) if not isinstance(t, str))
        if isinstance(bad, (list, tuple)):
            raise TypeError(
                f"text[{bad_index}] is a {type_name(bad)}: pre-tokenized input is not supported; pass strings"
            )
        raise TypeError(f"text[{bad_index}] must be a str, got {type_name(bad)}")
    if text_pair is None:
        return True, texts
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            f"text_pair must be a list of str with one entry per text (or None), got {type_name(text_pair)}"
        )
    if len(text_pair) != len(texts):
        raise InputError(f"text has {len(texts)} entries but text_pair has {len(text_pair)}; they must match")
    if not all(isinstance(t, str) for t in text_pair):
        bad_index, bad = next((i, t) for i, t in enumerate(text_pair) if not isinstance(t, str))
        raise TypeError(f"text_pair[{bad_index}] must be a str, got {type_name(bad)}")
    return True, list(zip(texts, text_pair))


# ------------------------------------------------------------------------------------------ the encoder
def encode_batch(
    backend: Tokenizer, inputs: list, add_special_tokens: bool, strategy: str, max_length: int | None, stride: int
) -> list:
    """Run the Rust encoder; its truncation errors (and its stride panic) become InputErrors naming arguments."""
    try:
        return backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
    except Exception as err:
        message = str(err)
        _raise_if_not_utf8(inputs)
        if "too short" in message:
            raise InputError(
                f"truncation={strategy!r} cannot fit a pair into max_length={max_length}: the sequence it may cut "
                "is too short; use truncation='longest_first' or a larger max_length"
            ) from None
        if "Second sequence not provided" in message:
            raise InputError(
                "truncation='only_second' needs a text_pair; use 'longest_first' or 'only_first'"
            ) from None
        raise InputError(f"the tokenizer backend rejected the input: {message}") from None
    except BaseException as err:
        if type(err).__name__ != "PanicException":  # pyo3's panic type is not importable; match it by name
            raise
        raise InputError(
            f"stride={stride} is too large for max_length={max_length} with truncation={strategy!r}: after "
            "truncation a sequence keeps no more than stride tokens; lower stride or raise max_length "
            f"(backend: {str(err).splitlines()[0] if str(err) else 'panic'})"
        ) from None


def _raise_if_not_utf8(inputs: list) -> None:
    """The backend reports lone surrogates as a type error; say which text holds them instead."""
    for index, item in enumerate(inputs):
        for name, text in zip(("text", "text_pair"), item if isinstance(item, tuple) else (item,)):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                where = f"{name}[{index}]" if len(inputs) > 1 else name
                raise InputError(
                    f"{where} is not valid Unicode: {err.reason} at character {err.start} "
                    f"({text[err.start:err.end]!r}); expected text that can be encoded as UTF-8"
                ) from None


# ------------------------------------------------------------------------------------------ outputs
def with_windows(encodings: list) -> tuple[list, list[int]]:
    """Every encoding followed by its overflow windows, and the index of the input each one came from."""
    flat, mapping = [], []
    for index, encoding in enumerate(encodings):
        windows = encoding.overflowing
        flat.append(encoding)
        flat.extend(windows)
        mapping.extend([index] * (1 + len(windows)))
    return flat, mapping


def collect_outputs(
    encodings: list,
    overflow_to_sample_mapping: list[int] | None,
    *,
    token_type_ids: bool,
    attention_mask: bool,
    special_tokens_mask: bool,
    offset_mapping: bool,
    length: bool,
) -> dict[str, Any]:
    """The asked-for outputs, one list per encoding, in the reference's key order."""
    data: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
    if token_type_ids:
        data["token_type_ids"] = [e.type_ids for e in encodings]
    if attention_mask:
        data["attention_mask"] = [e.attention_mask for e in encodings]
    if special_tokens_mask:
        data["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
    if offset_mapping:
        data["offset_mapping"] = [e.offsets for e in encodings]
    if length:
        data["length"] = [len(ids) for ids in data["input_ids"]]
    if overflow_to_sample_mapping is not None:
        data["overflow_to_sample_mapping"] = overflow_to_sample_mapping
    return data


def warn_if_too_long(
    ids: list[list[int]], max_length: int | None, model_max_length: int, truncation_strategy: str
) -> None:
    limit = max_length if max_length is not None else model_max_length
    longest = max(map(len, ids))
    if longest > limit:
        what = f"max_length={max_length}" if max_length is not None else f"model_max_length={model_max_length}"
        if truncation_strategy == "do_not_truncate":
            reason = "truncation is off"
        else:
            reason = "max_length leaves no room after the special tokens"
        warnings.warn(
            f"an encoded sequence has {longest} tokens, more than {what}, and was kept whole because {reason}; "
            "running it through the model may fail (pass truncation=True to cut it)",
            TokenizerLengthWarning,
            stacklevel=3,  # here <- FunnelTokenizer.__call__ <- its caller
        )


def unbatched(data: dict[str, Any]) -> dict[str, Any]:
    """The outputs of a single text: each list of one sequence becomes that sequence."""
    return {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}


def to_tensors(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """int64 numpy arrays ("np") or paddle tensors ("pd"); sequences of different lengths are an error."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in PER_SEQUENCE_KEYS:
            lengths = set(map(len, value))
            if len(lengths) > 1:
                raise InputError(
                    f"cannot make a tensor of {key}: the sequences have different lengths {sorted(lengths)[:5]}; "
                    "pass padding=True (or 'max_length') to get equal lengths"
                )
        array = np.asarray(value, dtype=np.int64)
        if key == "offset_mapping" and array.ndim == 2:  # every sequence empty: keep the (batch, 0, 2) shape
            array = array.reshape(len(value), 0, 2)
        out[key] = array
    if kind == "pd":
        out = {key: paddle.to_tensor(array) for key, array in out.items()}
    return out
