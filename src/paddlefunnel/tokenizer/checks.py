"""Argument checks shared by the tokenizer's modules; their messages name the argument and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

SIDES = ("right", "left")  # padding_side / truncation_side


def type_name(value: Any) -> str:
    return type(value).__name__


def is_int(value: Any) -> bool:
    """Python and numpy integers (ids often come out of arrays), but not bools."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not is_int(value) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise InputError(f"{name}={value!r} is invalid: expected {expected}")


def check_side(name: str, side: Any, allow_none: bool = False) -> None:
    if side is None and allow_none:
        return
    if side not in SIDES:
        expected = f"one of {list(SIDES)}" + (" or None" if allow_none else "")
        raise InputError(f"{name}={side!r} is invalid: expected {expected}")
