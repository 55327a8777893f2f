"""Fused, multi-threaded CPU kernels for the dynamic graph (C source: `_cpu_kernels.c`): layer norm, dropout, the
relative shift, a bias's addition and gradient, head split / merge, softmax, GELU (tanh form) and concatenation,
and fused forms of the model's own patterns (the attention probabilities from all their score terms, biased head
splits, add & norm, bias + GELU), each one pass over memory, forward and backward, on as many threads as Paddle's
math uses; and the AdamW update (`training.optimizer.AdamW`).

Why: Paddle 3.3 runs these ops on one thread, often as several passes (measured, RESULTS.md "Training step": they
took about 0.8 s of a 2.5 s training step at 8 x 128 and 4.7 s of 12 s at 8 x 512, while the matrix products ran
near the machine's ceiling). The C library is built by `pip install` (setup.py: an optional extension, so a machine
without a C compiler still installs) and loaded here with ctypes; it includes no Paddle or Python headers. Where it
is missing, `available()` is False and the model runs Paddle's own ops (the results agree to fp32 rounding:
tests/test_cpu_kernels.py); `paddlefunnel --version` says which.

Threads: the kernels run on the OpenMP runtime Paddle's MKL already uses (its libiomp5), with the thread count
`runtime.use_all_cpu_cores` gives Paddle (1 otherwise, Paddle's own default; `runtime.dynamic_graph_threads`).
Measured, a [4096, 768] layer norm (forward + backward, 2 ms alone) right after a [1024, 768] x [768, 3072] matrix
product: 14 ms more than the two alone on GNU OpenMP's threads (MKL's keep spinning for 200 ms after each call and
the two pools fight over the two cores), 1-2 ms more on MKL's own runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.machinery
import math
from collections.abc import Iterator
from pathlib import Path

import paddle

from ..runtime import dynamic_graph_threads

Tensor = paddle.Tensor

ABI_VERSION = 3  # pf_abi_version() of the C source this module was written for
_POINTER, _INT64, _FLOAT, _UINT64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_uint64
_SIGNATURES = {
    "pf_layer_norm_forward": ([_POINTER] * 6 + [_INT64, _INT64, _FLOAT], None),
    "pf_layer_norm_backward": ([_POINTER] * 8 + [_INT64, _INT64], ctypes.c_int),
    "pf_column_sum": ([_POINTER, _POINTER, _INT64, _INT64], ctypes.c_int),
    "pf_dropout": ([_POINTER, _POINTER, _INT64, _UINT64, _FLOAT, _FLOAT], None),
    "pf_relative_shift": ([_POINTER, _POINTER] + [_INT64] * 7, None),
    "pf_relative_shift_backward": ([_POINTER, _POINTER] + [_INT64] * 7, None),
    "pf_add_bias": ([_POINTER] * 3 + [_INT64, _INT64], None),
    "pf_swap_middle": ([_POINTER, _POINTER] + [_INT64] * 4, None),
    "pf_softmax": ([_POINTER, _POINTER, _INT64, _INT64], None),
    "pf_softmax_backward": ([_POINTER] * 3 + [_INT64, _INT64], None),
    "pf_gelu_tanh": ([_POINTER, _POINTER, _INT64], None),
    "pf_gelu_tanh_backward": ([_POINTER] * 3 + [_INT64], None),
    "pf_bias_gelu_tanh": ([_POINTER] * 4 + [_INT64, _INT64], None),
    "pf_bias_gelu_tanh_backward": ([_POINTER] * 4 + [_INT64, _INT64], ctypes.c_int),
    "pf_add_norm_forward": ([_POINTER] * 9 + [_INT64, _INT64, _UINT64, _FLOAT, _FLOAT, _FLOAT], None),
    "pf_add_norm_backward": ([_POINTER] * 10 + [_INT64, _INT64, _UINT64, _FLOAT, _FLOAT], ctypes.c_int),
    "pf_attention_softmax": ([_POINTER] * 7 + [_INT64] * 8 + [ctypes.c_int], None),
    "pf_attention_softmax_backward": ([_POINTER] * 7 + [_INT64] * 8 + [ctypes.c_int], None),
    "pf_biased_heads": ([_POINTER] * 7 + [ctypes.c_int] + [_INT64] * 4 + [_FLOAT], None),
    "pf_biased_heads_backward": ([_POINTER] * 7 + [ctypes.c_int] + [_INT64] * 4 + [_FLOAT], ctypes.c_int),
    "pf_copy_rows": ([_POINTER, _INT64, _POINTER, _INT64, _INT64, _INT64], None),
    "pf_adamw": ([ctypes.c_int] + [_POINTER] * 9 + [_FLOAT] * 3, ctypes.c_int),
    "pf_set_runtime": ([_POINTER] * 3, None),
    "pf_set_threads": ([ctypes.c_int], None),
    "pf_get_threads": ([], ctypes.c_int),
    "pf_abi_version": ([], ctypes.c_int),
}

_state: dict = {}  # "library": the loaded CDLL or None; "why": why not; "runtime": the OpenMP library used


def library_path() -> Path | None:
    """The built `_cpu_kernels` extension next to this file, or None when it was not built."""
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_cpu_kernels{suffix}"
        if candidate.is_file():
            return candidate
    return None


_RUNTIME_FUNCTIONS = ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads")


def _openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime Paddle loaded for MKL (libiomp5 in Paddle's `libs`), else GNU OpenMP, else None."""
    bundled = Path(paddle.__file__).resolve().parent / "libs" / "libiomp5.so"
    for candidate in (str(bundled) if bundled.is_file() else None, ctypes.util.find_library("gomp")):
        if candidate:
            try:
                runtime = ctypes.CDLL(candidate)
            except OSError:
                continue
            if all(hasattr(runtime, name) for name in _RUNTIME_FUNCTIONS):
                return runtime
    return None


def _load() -> ctypes.CDLL | None:
    path = library_path()
    if path is None:
        _state["why"] = "not built (pip install needs a C compiler for it)"
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        _state["why"] = f"{path.name} does not load ({err}; reinstall paddlefunnel)"
        return None
    if not hasattr(lib, "pf_abi_version") or lib.pf_abi_version() != ABI_VERSION:
        _state["why"] = f"{path.name} is from another version (reinstall paddlefunnel)"
        return None
    for name, (argtypes, restype) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    runtime = _openmp_runtime()
    if runtime is not None:
        lib.pf_set_runtime(*(ctypes.cast(getattr(runtime, name), _POINTER).value for name in _RUNTIME_FUNCTIONS))
        _state["runtime"] = Path(runtime._name).name
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded kernel library (loaded on first use), or None where it is not available; its thread count
    follows the dynamic graph's (`runtime.dynamic_graph_threads`, checked on every call: the CLI and tests set
    it after the library is loaded)."""
    if "library" not in _state:
        _state["library"] = _load()
    lib = _state["library"]
    threads = dynamic_graph_threads()
    if lib is not None and _state.get("threads") != threads:
        lib.pf_set_threads(threads)
        _state["threads"] = threads
    return lib


def available() -> bool:
    return library() is not None


def describe() -> str:
    """Whether the kernels are in use and on which OpenMP runtime (`paddlefunnel --version` shows it)."""
    lib = library()
    if lib is None:
        return f"not in use: {_state.get('why', 'unknown')}; Paddle's own ops run instead"
    return f"in use, on {_state.get('runtime', 'one thread (no OpenMP runtime found)')}"


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within: the model runs Paddle's own ops, as where the library is not built (tests and benchmarks compare)."""
    saved, _state["off"] = _state.get("off", False), True
    try:
        yield
    finally:
        _state["off"] = saved


def applies(*tensors: Tensor) -> bool:
    """The kernels take these tensors: float32 on the CPU, in the dynamic graph, with the library loaded."""
    return (not _state.get("off") and paddle.in_dynamic_mode()
            and all(t.dtype == paddle.float32 and t.place.is_cpu_place() for t in tensors) and available())


def _dense(x: Tensor) -> Tensor:
    return x if x.is_contiguous() else x.contiguous()


def _address(x: Tensor) -> int:
    return x.data_ptr()


# ---- layer norm ----------------------------------------------------------------------------------------------

class _LayerNorm(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, epsilon: float) -> Tensor:
        x = _dense(x)
        width = x.shape[-1]
        rows = math.prod(x.shape[:-1])
        y, mean, rstd = paddle.empty(x.shape, dtype=x.dtype), paddle.empty([rows]), paddle.empty([rows])
        library().pf_layer_norm_forward(_address(x), _address(weight), _address(bias), _address(y), _address(mean),
                                        _address(rstd), rows, width, epsilon)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight, mean, rstd = ctx.saved_tensor()
        grad = _dense(grad)
        width = x.shape[-1]
        grad_x, grad_weight, grad_bias = paddle.empty(x.shape), paddle.empty([width]), paddle.empty([width])
        status = library().pf_layer_norm_backward(
            _address(grad), _address(x), _address(weight), _address(mean), _address(rstd), _address(grad_x),
            _address(grad_weight), _address(grad_bias), mean.shape[0], width)
        if status != 0:
            raise MemoryError(f"layer norm backward: no memory for {width}-wide per-thread sums")
        return grad_x, grad_weight, grad_bias


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, epsilon: float) -> Tensor:
    """Layer norm over the last axis (forward and backward in the C kernels); weight and bias are [width]."""
    return _LayerNorm.apply(x, weight, bias, epsilon)


# ---- a bias's gradient ---------------------------------------------------------------------------------------

def column_sum(x: Tensor) -> Tensor:
    """[..., D] -> [D], the sum over every other axis (no autograd: used inside backward passes)."""
    x = _dense(x)
    width = x.shape[-1]
    out = paddle.empty([width], dtype=x.dtype)
    if library().pf_column_sum(_address(x), _address(out), math.prod(x.shape[:-1]), width) != 0:
        raise MemoryError(f"column sum: no memory for {width}-wide per-thread sums")
    return out


# ---- dropout -------------------------------------------------------------------------------------------------

def _new_key() -> int:
    """A 62-bit key from two of Paddle's int32 draws (so `paddle.seed` makes masks repeatable)."""
    high, low = paddle.randint(0, 2**31 - 1, [2], dtype="int64").tolist()
    return high << 31 | low


def _dropout_into(x: Tensor, key: int, p: float) -> Tensor:
    x = _dense(x)
    out = paddle.empty(x.shape, dtype=x.dtype)
    library().pf_dropout(_address(x), _address(out), math.prod(x.shape), key, p, 1.0 / (1.0 - p))
    return out


class _Dropout(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        # The mask's key comes from Paddle's generator, so `paddle.seed` makes runs repeatable; the backward redraws
        # the same mask from it instead of keeping a mask tensor.
        ctx.key = _new_key()
        ctx.p = p
        return _dropout_into(x, ctx.key, p)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _dropout_into(grad, ctx.key, ctx.p)


def dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode dropout ("upscale_in_train": kept entries scaled by 1 / (1 - p)), 0 <= p < 1."""
    if x.stop_gradient or not paddle.is_grad_enabled():
        return _dropout_into(x, _new_key(), p)
    return _Dropout.apply(x, p)


# ---- the relative shift ----------------------------------------------------------------------------------------

class _RelativeShift(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, scores: Tensor, geometry: tuple[int, ...], out_shape: list[int]) -> Tensor:
        scores = _dense(scores)
        out = paddle.empty(out_shape, dtype=scores.dtype)
        library().pf_relative_shift(_address(scores), _address(out), *geometry)
        ctx.geometry, ctx.in_shape = geometry, scores.shape
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = _dense(grad)
        grad_in = paddle.empty(ctx.in_shape, dtype=grad.dtype)
        library().pf_relative_shift_backward(_address(grad), _address(grad_in), *ctx.geometry)
        return grad_in


def relative_shift(scores: Tensor, n_chunks: int, chunk: int, width: int, shift: int, q_len: int,
                   keys: int) -> Tensor:
    """[B, H, n_chunks * chunk * width] scores of queries against distances (chunk k: [chunk, width]) ->
    [B, H, q_len, keys] scores against keys: query i = k * chunk + r reads its keys from offset
    shift * chunk + r * (width - shift) of its chunk (what positions.relative_shift's reshapes and slices do)."""
    batch, heads = scores.shape[0], scores.shape[1]
    geometry = (batch * heads, n_chunks, chunk, width, shift, q_len, keys)
    return _RelativeShift.apply(scores, geometry, [batch, heads, q_len, keys])


# ---- a bias added to every row ---------------------------------------------------------------------------------

def add_bias(x: Tensor, bias: Tensor) -> Tensor:
    """x + bias over the last axis, forward only (ops.add_bias gives it its gradient)."""
    x = _dense(x)
    out = paddle.empty(x.shape, dtype=x.dtype)
    library().pf_add_bias(_address(x), _address(bias), _address(out), math.prod(x.shape[:-1]), x.shape[-1])
    return out


# ---- splitting and merging heads -------------------------------------------------------------------------------

def _swapped(x: Tensor, outer: int, m: int, n: int, inner: int) -> Tensor:
    x = _dense(x)
    out = paddle.empty([outer, n, m, inner], dtype=x.dtype)
    library().pf_swap_middle(_address(x), _address(out), outer, m, n, inner)
    return out


class _SwapMiddle(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        outer, m, n, inner = x.shape
        ctx.shape = (outer, m, n, inner)
        return _swapped(x, outer, m, n, inner)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        outer, m, n, inner = ctx.shape
        return _swapped(grad, outer, n, m, inner)


def swap_middle_axes(x: Tensor) -> Tensor:
    """[A, M, N, D] -> [A, N, M, D], dense: [B, L, H, D] -> [B, H, L, D] splits heads, and back."""
    return _SwapMiddle.apply(x)


class _BiasedHeads(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, n_head: int, scale: float, *biases: Tensor) -> tuple[Tensor, ...]:
        x = _dense(x)
        batch, length = x.shape[0], x.shape[1]
        d_head = x.shape[2] // n_head
        outs = [paddle.empty([batch, n_head, length, d_head], dtype=x.dtype) for _ in biases]
        padding = [None] * (3 - len(biases))
        library().pf_biased_heads(_address(x), *[_address(b) for b in biases], *padding,
                                  *[_address(o) for o in outs], *padding, len(biases), batch, length, n_head, d_head,
                                  scale)
        ctx.meta = (x.shape, [b.shape for b in biases], n_head, d_head, scale)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads: Tensor):
        x_shape, bias_shapes, n_head, d_head, scale = ctx.meta
        grads = [_dense(g) for g in grads]
        grad_x = paddle.empty(x_shape, dtype=grads[0].dtype)
        grad_biases = [paddle.empty(shape, dtype=grads[0].dtype) for shape in bias_shapes]
        padding = [None] * (3 - len(grads))
        status = library().pf_biased_heads_backward(
            *[_address(g) for g in grads], *padding, _address(grad_x), *[_address(g) for g in grad_biases], *padding,
            len(grads), x_shape[0], x_shape[1], n_head, d_head, scale)
        if status != 0:
            raise MemoryError(f"biased heads backward: no memory for {n_head * d_head}-wide per-thread sums")
        return (grad_x, *grad_biases)


def biased_heads(x: Tensor, biases: list[Tensor], n_head: int, scale: float = 1.0) -> list[Tensor]:
    """[B, L, H * D] -> one [B, H, L, D] tensor per bias: (x * scale + bias * scale) split into heads, each bias
    H * D values ([H * D] or [H, D]; at most 3), in the pass the split takes anyway."""
    if not 1 <= len(biases) <= 3:
        raise ValueError(f"biased_heads takes 1 to 3 biases, not {len(biases)}")
    width = x.shape[-1]
    if x.ndim != 3 or width % n_head or any(math.prod(b.shape) != width for b in biases):
        raise ValueError(f"biased_heads: x {list(x.shape)} must be [B, L, {n_head} * D] and each bias {width} values, "
                         f"not {[list(b.shape) for b in biases]}")
    outs = _BiasedHeads.apply(x, n_head, scale, *biases)
    return list(outs) if isinstance(outs, (tuple, list)) else [outs]


# ---- softmax ---------------------------------------------------------------------------------------------------

class _Softmax(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = _dense(x)
        out = paddle.empty(x.shape, dtype=x.dtype)
        library().pf_softmax(_address(x), _address(out), math.prod(x.shape[:-1]), x.shape[-1])
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (probs,) = ctx.saved_tensor()
        grad = _dense(grad)
        grad_x = paddle.empty(probs.shape, dtype=probs.dtype)
        library().pf_softmax_backward(_address(grad), _address(probs), _address(grad_x),
                                      math.prod(probs.shape[:-1]), probs.shape[-1])
        return grad_x


def softmax(x: Tensor) -> Tensor:
    """Softmax over the last axis (exp within 2 ulp of libm's; see `pf_exp` in the C source)."""
    return _Softmax.apply(x)


# ---- GELU, tanh approximation ------------------------------------------------------------------------------------

class _GeluTanh(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = _dense(x)
        out = paddle.empty(x.shape, dtype=x.dtype)
        library().pf_gelu_tanh(_address(x), _address(out), math.prod(x.shape))
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensor()
        grad = _dense(grad)
        grad_x = paddle.empty(x.shape, dtype=x.dtype)
        library().pf_gelu_tanh_backward(_address(grad), _address(x), _address(grad_x), math.prod(x.shape))
        return grad_x


def gelu_tanh(x: Tensor) -> Tensor:
    """0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), the "gelu_new" activation."""
    return _GeluTanh.apply(x)


def _bias_gelu_into(x: Tensor, bias: Tensor, keep_slope: bool) -> tuple[Tensor, Tensor | None]:
    x = _dense(x)
    out = paddle.empty(x.shape, dtype=x.dtype)
    slope = paddle.empty(x.shape, dtype=x.dtype) if keep_slope else None
    library().pf_bias_gelu_tanh(_address(x), _address(bias), _address(out), None if slope is None else _address(slope),
                                math.prod(x.shape[:-1]), x.shape[-1])
    return out, slope


class _BiasGeluTanh(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor) -> Tensor:
        out, slope = _bias_gelu_into(x, bias, keep_slope=True)
        ctx.save_for_backward(slope)  # GELU's slope at x + bias: the backward is then a product (see the C source)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (slope,) = ctx.saved_tensor()
        grad = _dense(grad)
        width = slope.shape[-1]
        grad_x, grad_bias = paddle.empty(slope.shape, dtype=slope.dtype), paddle.empty([width], dtype=slope.dtype)
        status = library().pf_bias_gelu_tanh_backward(_address(grad), _address(slope), _address(grad_x),
                                                       _address(grad_bias), math.prod(slope.shape[:-1]), width)
        if status != 0:
            raise MemoryError(f"GELU backward: no memory for {width}-wide per-thread sums")
        return grad_x, grad_bias


def bias_gelu_tanh(x: Tensor, bias: Tensor) -> Tensor:
    """gelu_tanh(x + bias) for [..., D] x and [D] bias, the bias's addition inside GELU's pass (and its gradient
    inside GELU's gradient)."""
    if not paddle.is_grad_enabled() or (x.stop_gradient and bias.stop_gradient):
        return _bias_gelu_into(x, bias, keep_slope=False)[0]
    return _BiasGeluTanh.apply(x, bias)


# ---- add & norm --------------------------------------------------------------------------------------------------

def _add_norm_into(x: Tensor, bias: Tensor, residual: Tensor, weight: Tensor, ln_bias: Tensor, key: int, p: float,
                   epsilon: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, residual = _dense(x), _dense(residual)
    width = x.shape[-1]
    rows = math.prod(x.shape[:-1])
    total, out = paddle.empty(x.shape, dtype=x.dtype), paddle.empty(x.shape, dtype=x.dtype)
    mean, rstd = paddle.empty([rows]), paddle.empty([rows])
    library().pf_add_norm_forward(_address(x), _address(bias), _address(residual), _address(weight),
                                  _address(ln_bias), _address(total), _address(out), _address(mean), _address(rstd),
                                  rows, width, key, p, 1.0 / (1.0 - p), epsilon)
    return out, total, mean, rstd


class _AddNorm(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor, residual: Tensor, weight: Tensor, ln_bias: Tensor, p: float,
                epsilon: float) -> Tensor:
        ctx.wanted = [not t.stop_gradient for t in (x, bias, residual, weight, ln_bias)]  # before any copy
        ctx.key, ctx.p = (_new_key() if p > 0 else 0), p
        out, total, mean, rstd = _add_norm_into(x, bias, residual, weight, ln_bias, ctx.key, p, epsilon)
        ctx.save_for_backward(total, weight, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        total, weight, mean, rstd = ctx.saved_tensor()
        grad = _dense(grad)
        width = total.shape[-1]
        grad_total, grad_x = paddle.empty(total.shape), paddle.empty(total.shape)
        grad_weight, grad_ln_bias, grad_bias = (paddle.empty([width]) for _ in range(3))
        status = library().pf_add_norm_backward(
            _address(grad), _address(total), _address(weight), _address(mean), _address(rstd), _address(grad_total),
            _address(grad_x), _address(grad_weight), _address(grad_ln_bias), _address(grad_bias), mean.shape[0],
            width, ctx.key, ctx.p, 1.0 / (1.0 - ctx.p))
        if status != 0:
            raise MemoryError(f"add & norm backward: no memory for {width}-wide per-thread sums")
        grads = (grad_x, grad_bias, grad_total, grad_weight, grad_ln_bias)
        return tuple(g if wanted else None for g, wanted in zip(grads, ctx.wanted))


def add_norm(x: Tensor, bias: Tensor, residual: Tensor, weight: Tensor, ln_bias: Tensor, p: float,
             epsilon: float) -> Tensor:
    """layer_norm(residual + dropout(x + bias)) over the last axis, one pass each way; `p` the dropout rate
    (0: none, as in evaluation). The mask is the one `dropout` draws for x + bias with the same key."""
    if not paddle.is_grad_enabled() or all(t.stop_gradient for t in (x, bias, residual, weight, ln_bias)):
        return _add_norm_into(x, bias, residual, weight, ln_bias, _new_key() if p > 0 else 0, p, epsilon)[0]
    return _AddNorm.apply(x, bias, residual, weight, ln_bias, p, epsilon)


# ---- attention probabilities from their score terms ---------------------------------------------------------------

class _AttentionSoftmax(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, content: Tensor, position: Tensor, uv: Tensor, pair_diff: Tensor, pair_same: Tensor,
                key_bias: Tensor | None, geometry: tuple[int, ...]) -> Tensor:
        content, position, uv = _dense(content), _dense(position), _dense(uv)
        probs = paddle.empty(content.shape, dtype=content.dtype)
        library().pf_attention_softmax(
            _address(content), _address(position), _address(uv), _address(pair_diff), _address(pair_same),
            None if key_bias is None else _address(key_bias), _address(probs), *geometry)
        ctx.save_for_backward(probs, pair_diff, pair_same)
        ctx.geometry, ctx.shapes, ctx.constants = geometry, (position.shape, uv.shape), 2 + (key_bias is not None)
        return probs

    @staticmethod
    def backward(ctx, grad: Tensor):
        probs, pair_diff, pair_same = ctx.saved_tensor()
        grad = _dense(grad)
        position_shape, uv_shape = ctx.shapes
        grad_content = paddle.empty(probs.shape, dtype=probs.dtype)
        grad_position, grad_uv = paddle.empty(position_shape, dtype=probs.dtype), paddle.empty(uv_shape)
        library().pf_attention_softmax_backward(
            _address(grad), _address(probs), _address(pair_diff), _address(pair_same), _address(grad_content),
            _address(grad_position), _address(grad_uv), *ctx.geometry)
        return (grad_content, grad_position, grad_uv) + (None,) * ctx.constants  # none for the constant inputs


def attention_softmax(content: Tensor, position: Tensor, uv: Tensor, pair_diff: Tensor, pair_same: Tensor,
                      key_bias: Tensor | None, n_chunks: int, chunk: int, width: int, shift: int,
                      cls: bool) -> Tensor:
    """Attention probabilities [B, H, Lq, Lk] = softmax over keys of content + the shifted position term + the
    token-type term + key_bias, in one pass (and one back).

    content: [B, H, Lq, Lk]; position: the position scores before the relative shift, [B, H, n_chunks * chunk *
    width] in any shape (`relative_shift`'s layout: query i = k * chunk + r reads offset shift * chunk + r *
    (width - shift) of chunk k); `cls`: the <cls> row and column take no position term (separate_cls); uv:
    [B, H, Lq, 2], the per-query (u, v) of the token-type term u * pair_diff + v * pair_same, with pair_diff and
    pair_same [B, Lq, Lk] constants (no gradient); key_bias: [B, Lk] constant, or None. Gradients flow to
    content, position and uv.
    """
    batch, heads, q_len, keys = content.shape
    # The C code trusts these sizes: a mismatch would read past a buffer, so it is refused here.
    expected = {"position": ([math.prod(position.shape)], [batch * heads * n_chunks * chunk * width]),
                "uv": (list(uv.shape), [batch, heads, q_len, 2]),
                "pair_diff": (list(pair_diff.shape), [batch, q_len, keys]),
                "pair_same": (list(pair_same.shape), [batch, q_len, keys]),
                "key_bias": ([batch, keys] if key_bias is None else list(key_bias.shape), [batch, keys])}
    wrong = {name: got for name, (got, want) in expected.items() if got != want}
    if wrong or n_chunks * chunk < q_len or width - shift < keys:
        raise ValueError(f"attention_softmax: sizes {wrong} do not fit content {[batch, heads, q_len, keys]} and "
                         f"position layout (n_chunks {n_chunks}, chunk {chunk}, width {width}, shift {shift})")
    geometry = (batch * heads, heads, q_len, keys, n_chunks, chunk, width, shift, int(cls))
    pair_diff, pair_same = _dense(pair_diff), _dense(pair_same)
    key_bias = None if key_bias is None else _dense(key_bias)
    return _AttentionSoftmax.apply(content, position, uv, pair_diff, pair_same, key_bias, geometry)


# ---- concatenation -----------------------------------------------------------------------------------------------

def _as_rows(shape: list[int], axis: int) -> tuple[int, int]:
    """A dense tensor seen as [rows, width] with everything from `axis` on in each row."""
    return math.prod(shape[:axis]), math.prod(shape[axis:])


class _Concat(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, axis: int, *tensors: Tensor) -> Tensor:
        # Which inputs want a gradient, read before `_dense`: a copy made inside forward never wants one (PyLayer
        # forwards run without autograd), and a missing gradient for an input that needs one reads as garbage.
        wanted = [not t.stop_gradient for t in tensors]
        tensors = [_dense(t) for t in tensors]
        shape = list(tensors[0].shape)
        shape[axis] = sum(t.shape[axis] for t in tensors)
        out = paddle.empty(shape, dtype=tensors[0].dtype)
        rows, total = _as_rows(shape, axis)
        offset = 0
        for tensor in tensors:
            width = _as_rows(tensor.shape, axis)[1]
            library().pf_copy_rows(_address(tensor), width, _address(out) + 4 * offset, total, rows, width)
            offset += width
        ctx.axis, ctx.shapes, ctx.wanted = axis, [t.shape for t in tensors], wanted
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = _dense(grad)
        rows, total = _as_rows(grad.shape, ctx.axis)
        grads, offset = [], 0
        for shape, wanted in zip(ctx.shapes, ctx.wanted):
            width = _as_rows(shape, ctx.axis)[1]
            piece = None
            if wanted:
                piece = paddle.empty(shape, dtype=grad.dtype)
                library().pf_copy_rows(_address(grad) + 4 * offset, total, _address(piece), width, rows, width)
            grads.append(piece)
            offset += width
        return tuple(grads)


def concat(tensors: list[Tensor], axis: int) -> Tensor:
    """paddle.concat(tensors, axis) for same-shaped (but for `axis`) float32 tensors, as one strided copy each."""
    axis = axis % tensors[0].ndim
    others = [shape[:axis] + shape[axis + 1:] for shape in (list(t.shape) for t in tensors)]
    if any(other != others[0] for other in others):  # the copies would read past the smaller inputs
        raise ValueError(f"concat along axis {axis}: shapes {[list(t.shape) for t in tensors]} differ on another axis")
    return _Concat.apply(axis, *tensors)


# ---- the AdamW update ------------------------------------------------------------------------------------------

def adamw_update(updates: list[tuple], beta1: float, beta2: float, epsilon: float) -> None:
    """One AdamW step of several parameters in place, as Paddle's CPU `adamw_` computes it for each, in one
    multi-threaded pass over all of them (small tensors share the threads' work instead of each waking them).

    `updates`: per parameter, (param, grad, moment1, moment2, beta1_pow, beta2_pow, learning_rate, decay): its
    moments and [1] bias-correction powers (Paddle's accumulators: beta ** t on entry, advanced here), its rate,
    and `decay` = learning rate x weight-decay coefficient (0 for a parameter that is not decayed). Tensors
    float32 and dense; the gradients are not changed.
    """
    grads = [_dense(update[1]) for update in updates]  # held until the call returns

    def pointers(column: list) -> ctypes.Array:
        return (ctypes.c_void_p * len(updates))(*[_address(t) for t in column])

    columns = list(zip(*updates))
    status = library().pf_adamw(
        len(updates), pointers(columns[0]), pointers(grads), *(pointers(columns[i]) for i in range(2, 6)),
        (ctypes.c_int64 * len(updates))(*[math.prod(param.shape) for param in columns[0]]),
        (ctypes.c_float * len(updates))(*columns[6]), (ctypes.c_float * len(updates))(*columns[7]),
        beta1, beta2, epsilon)
    if status != 0:
        raise MemoryError(f"AdamW: no memory for the list of {len(updates)} parameters")
