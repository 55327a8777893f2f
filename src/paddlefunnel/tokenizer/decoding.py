"""Ids on their way back to tokens and text: accept lists, numpy arrays and paddle tensors, reject ids the
vocabulary does not have (the reference would turn them into None or drop them silently)."""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from ..errors import InputError
from .checks import is_int, type_name


def as_numpy(ids: Any) -> Any:
    """A paddle tensor (anything with `.numpy()` that is not already an array) as a numpy array; else `ids`."""
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        return ids.numpy()
    return ids


def is_batch(ids: Any) -> bool:
    """Several sequences: a 2-D array or a list of lists/arrays."""
    if isinstance(ids, np.ndarray):
        return ids.ndim == 2
    return isinstance(ids, (list, tuple)) and bool(ids) and isinstance(ids[0], (list, tuple, np.ndarray))


def ids_list(ids: Any, argument: str, vocab_size: int) -> list[int]:
    """`ids` as a list of int in [0, vocab_size); errors name `argument`."""
    ids = as_numpy(ids)
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{argument} must be a 1-D array of integers, got shape {ids.shape} dtype {ids.dtype}")
        ids = ids.tolist()
    elif isinstance(ids, tuple):
        ids = list(ids)
    elif not isinstance(ids, list):
        raise TypeError(f"{argument} must be a list of int, a numpy array or a paddle tensor, got {type_name(ids)}")
    if ids:
        try:  # min/max run in C; a non-int anywhere else is caught by the backend call (see raise_not_int)
            low, high = min(ids), max(ids)
        except TypeError:
            low = high = None
        if not (is_int(low) and is_int(high)):
            bad = next((i for i in ids if not is_int(i)), low)
            raise TypeError(f"{argument} must contain only int, got {type_name(bad)}")
        if low < 0 or high >= vocab_size:
            raise InputError(
                f"{argument} contains id {low if low < 0 else high}, outside the vocabulary [0, {vocab_size})"
            )
    return ids


def raise_not_int(ids: list, argument: str = "ids") -> NoReturn:
    """The backend rejected a list that `ids_list` let through (a float between int extremes): name the culprit."""
    bad = next(i for i in ids if not is_int(i))
    raise TypeError(f"{argument} must contain only int, got {type_name(bad)}") from None
