"""Activation functions by their `transformers` names (the `hidden_act` config field)."""

from __future__ import annotations

import math
from collections.abc import Callable

import paddle
import paddle.nn.functional as F

from ..errors import InputError
from . import cpu_kernels
from .ops import fusable_linear


def _gelu_tanh(x: paddle.Tensor) -> paddle.Tensor:
    # "gelu_new": the tanh approximation used by the released Funnel checkpoints (the C kernel, one multi-threaded
    # pass each way, where it applies: modeling/cpu_kernels.py).
    if cpu_kernels.applies(x):
        return cpu_kernels.gelu_tanh(x)
    return F.gelu(x, approximate=True)


def _gelu_fast(x: paddle.Tensor) -> paddle.Tensor:
    return 0.5 * x * (1.0 + paddle.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _gelu_erf(x: paddle.Tensor) -> paddle.Tensor:
    return F.gelu(x, approximate=False)


def _quick_gelu(x: paddle.Tensor) -> paddle.Tensor:
    return x * F.sigmoid(1.702 * x)


def _gelu_python(x: paddle.Tensor) -> paddle.Tensor:
    return x * 0.5 * (1.0 + paddle.erf(x / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Callable[[paddle.Tensor], paddle.Tensor]] = {
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_fast,
    "gelu": _gelu_erf,
    "gelu_python": _gelu_python,
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": paddle.tanh,
    "sigmoid": F.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


def activation_of_linear(function: Callable[[paddle.Tensor], paddle.Tensor], linear: paddle.nn.Layer,
                         x: paddle.Tensor) -> paddle.Tensor:
    """function(linear(x)); for tanh GELU on the C kernels the linear layer's bias is added inside GELU's pass and
    its gradient summed inside GELU's gradient (`cpu_kernels.bias_gelu_tanh`: one pass each way fewer over the
    feed-forward layer's widest activation)."""
    if function is _gelu_tanh and fusable_linear(linear) and cpu_kernels.applies(x):
        return cpu_kernels.bias_gelu_tanh(linear.product(x), linear.bias)
    return function(linear(x))


def get_activation(name: str) -> Callable[[paddle.Tensor], paddle.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InputError(f"hidden_act={name!r} is not supported; choose one of {sorted(ACTIVATIONS)}") from None
