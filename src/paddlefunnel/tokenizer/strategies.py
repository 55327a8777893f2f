"""Padding and truncation: the reference's rules for turning call arguments into strategies, the checks on those
arguments, and the backend settings they become."""

from __future__ import annotations

import warnings
from typing import Any

from tokenizers import Tokenizer

from ..errors import InputError
from .checks import check_int, check_side
from .pipeline import PAD_TOKEN_TYPE_ID

# transformers' sentinels: a model_max_length above LARGE_INTEGER means "no limit known".
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TENSOR_TYPES = (None, "np", "pd")


def resolve_strategies(
    padding: Any, truncation: Any, max_length: Any, pad_to_multiple_of: Any, verbose: bool, model_max_length: int
) -> tuple[str, str, int | None]:
    """transformers' `_get_padding_truncation_strategies`, with errors that name the argument.

    Returns (padding strategy, truncation strategy, max_length).
    """
    check_int("max_length", max_length, 1, allow_none=True)
    check_int("pad_to_multiple_of", pad_to_multiple_of, 1, allow_none=True)
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"  # the reference's backward-compatible default
    padding_strategy = _padding_strategy(padding, truncation, max_length, verbose)
    truncation_strategy = _truncation_strategy(truncation)
    if max_length is None:
        known = model_max_length <= LARGE_INTEGER
        if padding_strategy == "max_length":
            if known:
                max_length = model_max_length
            else:
                padding_strategy = "do_not_pad"
        if truncation_strategy != "do_not_truncate":
            if known:
                max_length = model_max_length
            else:
                truncation_strategy = "do_not_truncate"
    if (
        truncation_strategy != "do_not_truncate"
        and padding_strategy != "do_not_pad"
        and pad_to_multiple_of is not None
        and max_length is not None
        and max_length % pad_to_multiple_of
    ):
        raise InputError(
            f"truncation length max_length={max_length} is not a multiple of "
            f"pad_to_multiple_of={pad_to_multiple_of}"
        )
    return padding_strategy, truncation_strategy, max_length


def _padding_strategy(padding: Any, truncation: Any, max_length: int | None, verbose: bool) -> str:
    if padding is True:
        if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
            warnings.warn(  # stacklevel: here <- resolve_strategies <- FunnelTokenizer.__call__ <- its caller
                "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                "To pad to max length, use `padding='max_length'`.",
                stacklevel=4,
            )
        return "longest"
    if padding is False or padding is None:
        return "do_not_pad"
    if padding in PADDING_STRATEGIES:
        return padding
    raise InputError(f"padding={padding!r} is invalid: expected True, False or one of {list(PADDING_STRATEGIES)}")


def _truncation_strategy(truncation: Any) -> str:
    if truncation is True:
        return "longest_first"
    if truncation is False or truncation is None:
        return "do_not_truncate"
    if truncation in TRUNCATION_STRATEGIES:
        return truncation
    raise InputError(
        f"truncation={truncation!r} is invalid: expected True, False, None or one of {list(TRUNCATION_STRATEGIES)}"
    )


def check_call_arguments(stride: Any, padding_side: Any, return_tensors: Any) -> None:
    check_int("stride", stride, 0)
    check_side("padding_side", padding_side, allow_none=True)
    if return_tensors not in TENSOR_TYPES:
        raise InputError(f"return_tensors={return_tensors!r} is invalid: expected None, 'np' or 'pd'")


def check_stride(stride: int, max_length: int, special_tokens: int) -> None:
    """Windows advance by (room for text - stride) tokens: a stride that leaves no advance cannot work."""
    budget = max_length - special_tokens
    if stride > 0 and stride >= budget:
        raise InputError(
            f"stride={stride} is too large for max_length={max_length}: a window holds at most {budget} "
            "text tokens after the special tokens, and stride must be smaller than that"
        )


def truncation_settings(strategy: str, max_length: int | None, stride: int, side: str) -> tuple | None:
    """What `BackendSettings.apply` takes for truncation: None when off."""
    return None if strategy == "do_not_truncate" else (max_length, stride, strategy, side)


def padding_settings(strategy: str, max_length: int | None, side: str, multiple: int | None) -> tuple | None:
    """What `BackendSettings.apply` takes for padding: None when off; length None pads to the longest."""
    if strategy == "do_not_pad":
        return None
    return (max_length if strategy == "max_length" else None, side, multiple)


class BackendSettings:
    """The truncation and padding the backend is set to; re-setting costs more than encoding a few texts, so it
    happens only when a call needs different ones."""

    UNKNOWN = ("unknown",)  # someone else may have changed the backend: set it on the next call

    def __init__(self, backend: Tokenizer, pad_id: int, pad_token: str) -> None:
        self.backend = backend
        self.pad_id = pad_id
        self.pad_token = pad_token
        self.truncation: tuple | None = None
        self.padding: tuple | None = None

    def forget(self) -> None:
        self.truncation = self.padding = self.UNKNOWN

    def apply(self, truncation: tuple | None, padding: tuple | None) -> None:
        """`truncation`: None (off) or (max_length, stride, strategy, side); `padding`: None (off) or (length or
        None for the longest, side, pad_to_multiple_of)."""
        if truncation != self.truncation:
            if truncation is None:
                self.backend.no_truncation()
            else:
                max_length, stride, strategy, side = truncation
                self.backend.enable_truncation(max_length, stride=stride, strategy=strategy, direction=side)
            self.truncation = truncation
        if padding != self.padding:
            if padding is None:
                self.backend.no_padding()
            else:
                length, side, multiple = padding
                self.backend.enable_padding(
                    direction=side,
                    pad_id=self.pad_id,
                    pad_type_id=PAD_TOKEN_TYPE_ID,
                    pad_token=self.pad_token,
                    length=length,
                    pad_to_multiple_of=multiple,
                )
            self.padding = padding
