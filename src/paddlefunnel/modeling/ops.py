"""Small building blocks that work in Paddle's dynamic graph and under `paddle.jit.to_static` with dynamic
batch and sequence dimensions, and that avoid the slow paths Paddle 3.3 takes on CPU.

Two facts shape them (measured, see benchmarks/RESULTS.md):
- In the dynamic graph a transpose is a strided view, and materialising it (or feeding it to most kernels)
  runs ~20x slower than a dense transpose; `einsum` writes a dense result, so head splits use it.
- Under to_static a dynamic dimension reads as -1 from `.shape`; lengths then come from `paddle.shape`
  as tensors, and every length-dependent decision that cannot be made must assume the common case
  (see `known_length`).
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import cpu_kernels

Tensor = paddle.Tensor


def in_dynamic_graph() -> bool:
    return paddle.in_dynamic_mode()


def is_tensor(value) -> bool:
    """Dynamic-graph tensors and static-graph values (PIR) alike."""
    return isinstance(value, (paddle.Tensor, paddle.pir.Value))


def dim(x: Tensor, axis: int):
    """Size of `axis`: an int when known, else a tensor (dynamic dimension under to_static)."""
    size = x.shape[axis]
    if size is not None and size >= 0:
        return size
    return paddle.shape(x)[axis : axis + 1].astype("int32")  # [1] int32: what shape-list arguments take


def known_length(length) -> int | None:
    """The length as an int when it is known while tracing, else None."""
    return length if isinstance(length, int) else None


_TO_END = 2**31 - 1


def dense_slice(x: Tensor, axis: int, start, end=None) -> Tensor:
    """x[..., start:end, ...] along `axis` as a dense tensor (`end=None`: to the end of the axis).

    Dynamic graph: `crop` (slicing would give a strided view). Static graph: `slice`, which is dense there
    and, unlike `crop`, converts to ONNX.
    """
    if not in_dynamic_graph():
        return paddle.slice(x, axes=[axis], starts=[start], ends=[_TO_END if end is None else end])
    shape, offsets = [-1] * x.ndim, [0] * x.ndim
    offsets[axis] = start
    if end is not None:
        shape[axis] = end - start
    return paddle.crop(x, shape=shape, offsets=offsets)


def dense_transpose(x: Tensor, perm: list[int]) -> Tensor:
    """A transposed copy in contiguous memory (never a strided view)."""
    if not in_dynamic_graph():
        return paddle.transpose(x, perm)  # static graphs have no strided views
    letters = "abcdefgh"[: x.ndim]
    return paddle.einsum(f"{letters}->{''.join(letters[p] for p in perm)}", x)


def split_heads(x: Tensor, n_head: int, d_head: int) -> Tensor:
    """[B, L, H*D] -> [B, H, L, D], contiguous (the C kernel's copy, multi-threaded, where it applies)."""
    x = x.reshape([0, 0, n_head, d_head])
    if cpu_kernels.applies(x):
        return cpu_kernels.swap_middle_axes(x)
    return dense_transpose(x, [0, 2, 1, 3])


def fusable_linear(layer: nn.Layer) -> bool:
    """Whether a fused kernel may take this layer's bias into its own pass and call `Linear.product` instead of
    the layer: our `Linear`, with a bias, float32 on the C kernels, and no forward hooks (which calling around the
    layer would skip; a user's hook, or a wrapper put in its place, gets the plain call)."""
    return (isinstance(layer, Linear) and layer.bias is not None and not layer._forward_pre_hooks
            and not layer._forward_post_hooks and cpu_kernels.applies(layer.weight, layer.bias))


def project_heads(linear: nn.Layer, x: Tensor, n_head: int) -> Tensor:
    """split_heads(linear(x)): [B, L, D_in] -> [B, H, L, D]; on the C kernels the bias is added in the split's
    pass (`cpu_kernels.biased_heads`) instead of a pass of its own, forward and backward."""
    if x.ndim == 3 and fusable_linear(linear) and cpu_kernels.applies(x):
        return cpu_kernels.biased_heads(linear.product(x), [linear.bias], n_head)[0]
    out = linear(x)
    return split_heads(out, n_head, out.shape[-1] // n_head)


def merge_heads(x: Tensor) -> Tensor:
    """[B, H, L, D] -> [B, L, H*D], contiguous."""
    heads, d_head = x.shape[1], x.shape[3]
    merged = cpu_kernels.swap_middle_axes(x) if cpu_kernels.applies(x) else dense_transpose(x, [0, 2, 1, 3])
    return merged.reshape([0, 0, heads * d_head])


def concat(tensors: list[Tensor], axis: int) -> Tensor:
    """`paddle.concat`, as the C kernel's multi-threaded copies where it applies (`cpu_kernels.concat`).

    Paddle's CPU concat and its gradient copy row by row on one thread; on the attention's [B, H, L, 64 + a few]
    query and key concatenations they took 120 ms of a 2.7 s training step (8 x 128).
    """
    if len(tensors) > 1 and cpu_kernels.applies(*tensors):
        return cpu_kernels.concat(tensors, axis)
    return paddle.concat(tensors, axis=axis)


def cpu_dropout_scale(shape: list[int], p: float, dtype) -> Tensor:
    """Dropout's multiplier for training on the CPU: 0 for dropped entries, 1 / (1 - p) for kept ones.

    Paddle 3.3's CPU dropout draws every random number from one single-threaded Mersenne Twister (measured:
    14.7 ms for [8, 12, 128, 128]); NumPy's PCG64 draws the same uniforms in a fifth of that (5.3 ms for the
    whole dropout). Its key comes from Paddle's generator, so `paddle.seed` still makes runs repeatable.
    """
    key = paddle.randint(0, 2**31 - 1, [2], dtype="int64").tolist()  # 62 bits: masks of different calls never repeat
    uniform = np.random.Generator(np.random.PCG64(key)).random(shape, dtype=np.float32)
    scale = (uniform >= p) * np.float32(1.0 / (1.0 - p))
    return paddle.to_tensor(scale.astype(np.float32)).astype(dtype)


class Dropout(nn.Dropout):
    """`nn.Dropout` that is the identity, without a copy, outside training or when p == 0; when training in the
    dynamic graph on the CPU it runs the C kernel (`cpu_kernels.dropout`: mask drawn, applied and redrawn for the
    backward in one multi-threaded pass; forward + backward of [8, 12, 512, 512]: 42 ms against 181 ms with NumPy's
    masks, benchmarks/bench_kernels.py) or, where that is not built, draws its masks with `cpu_dropout_scale`.

    Paddle's own Dropout runs a kernel that copies its input even in eval mode; on [B, H, L, L] attention
    probabilities that is a full pass over the largest tensor of the model.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if (in_dynamic_graph() and x.place.is_cpu_place() and self.p < 1 and self.axis is None
                and self.mode == "upscale_in_train"):
            if cpu_kernels.applies(x):
                return cpu_kernels.dropout(x, self.p)
            return x * cpu_dropout_scale(x.shape, self.p, x.dtype)
        return super().forward(x)


class _BiasAdd(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor) -> Tensor:
        return cpu_kernels.add_bias(x, bias) if cpu_kernels.applies(x, bias) else x + bias

    @staticmethod
    def backward(ctx, grad: Tensor):
        if cpu_kernels.applies(grad):
            return grad, cpu_kernels.column_sum(grad)
        rows = grad.reshape([-1, grad.shape[-1]])
        ones = paddle.ones([1, rows.shape[0]], dtype=grad.dtype)
        return grad, paddle.matmul(ones, rows).reshape([-1])


def add_bias(x: Tensor, bias: Tensor) -> Tensor:
    """x + bias (a vector over the last axis), with a fast bias gradient.

    The bias gradient sums the output gradient over every row; Paddle's CPU reduction for that is ~20x slower
    than PyTorch's (fwd + bwd of a [1024, 3072] bias add: 50 ms vs 2.8 ms), a matmul with a ones row is not, and
    the C kernel (`cpu_kernels.column_sum`, multi-threaded) is faster still.
    """
    if in_dynamic_graph() and paddle.is_grad_enabled() and not bias.stop_gradient and not x.stop_gradient:
        return _BiasAdd.apply(x, bias)
    return x + bias


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same initialisation) whose bias gradient uses `add_bias`.

    Without gradients, on the CPU, the bias goes into the matrix product (`addmm`): Paddle's broadcasting add
    is ~10x slower than a same-shape one (0.44 vs 0.04 ms on [8, 128, 768]), and addmm saves about half of it
    (measured: [1024, 768] x [768, 3072] + bias, 25.1 -> 24.3 ms).

    With gradients, in the dynamic graph, the product runs on the rows as one 2-D matrix: Paddle's matmul of a
    [B, L, D] input with a [D, N] weight, forward + backward, ran 12% slower than the same product on
    [B * L, D] (measured [8, 128, 768] x [768, 768]: 21.2 vs 18.6 ms, 171 vs 195 GFLOP/s).
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is not None and in_dynamic_graph() and x.place.is_cpu_place() and (
                not paddle.is_grad_enabled() or (x.stop_gradient and self.weight.stop_gradient
                                                 and self.bias.stop_gradient)):
            rows = paddle.addmm(self.bias, x.reshape([-1, x.shape[-1]]), self.weight)
            return rows.reshape([*x.shape[:-1], rows.shape[-1]])
        out = self.product(x)
        return out if self.bias is None else add_bias(out, self.bias)

    def product(self, x: Tensor) -> Tensor:
        """x @ weight, without the bias (which `add_bias`, or a fused kernel after it, adds)."""
        if in_dynamic_graph() and x.ndim > 2:
            rows = paddle.matmul(x.reshape([-1, x.shape[-1]]), self.weight)
            return rows.reshape([*x.shape[:-1], rows.shape[-1]])
        return paddle.matmul(x, self.weight)


def _wants_fast_grad(*tensors: Tensor) -> bool:
    """Dynamic-graph training on the CPU, every input needing a gradient: where Paddle's own backward is slow."""
    return (in_dynamic_graph() and paddle.is_grad_enabled() and tensors[0].place.is_cpu_place()
            and not any(t.stop_gradient for t in tensors))


class _LayerNormFunction(paddle.autograd.PyLayer):
    """Paddle's layer norm forward; a backward written as matrix products and same-shape element-wise ops.

    Paddle 3.3's CPU layer_norm_grad kernel is slow (measured, forward + backward on [8, 128, 768]: 8.8 ms with
    it, 3.8 ms with this backward; PyTorch's backward alone takes 0.3 ms), and broadcasting element-wise ops and
    row reductions are slow as well, so row means and broadcasts here are products with ones vectors. Same
    result (tests/test_modeling_ops.py, and the model's backward parity tests).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, epsilon: float) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.epsilon = epsilon
        return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensor()
        shape, width = x.shape, x.shape[-1]
        rows, grad_rows = x.reshape([-1, width]), grad.reshape([-1, width])
        count, dtype = rows.shape[0], x.dtype
        row_mean = paddle.full([width, 1], 1.0 / width, dtype=dtype)  # [N, D] @ this: mean of each row
        spread = paddle.ones([1, width], dtype=dtype)  # [N, 1] @ this: the column repeated along the row

        centered = rows - paddle.matmul(paddle.matmul(rows, row_mean), spread)
        inv_std = paddle.matmul(paddle.rsqrt(paddle.matmul(centered * centered, row_mean) + ctx.epsilon), spread)
        normalized = centered * inv_std
        scaled = grad_rows * paddle.matmul(paddle.ones([count, 1], dtype=dtype), weight.reshape([1, width]))
        mean_scaled = paddle.matmul(paddle.matmul(scaled, row_mean), spread)
        mean_projection = paddle.matmul(paddle.matmul(scaled * normalized, row_mean), spread)
        grad_x = inv_std * (scaled - mean_scaled - normalized * mean_projection)
        column_sum = paddle.ones([1, count], dtype=dtype)
        return (grad_x.reshape(shape), paddle.matmul(column_sum, grad_rows * normalized).reshape([-1]),
                paddle.matmul(column_sum, grad_rows).reshape([-1]))


class LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` (same parameters and forward) with faster CPU kernels in the dynamic graph: the C kernels'
    forward and backward (`cpu_kernels.layer_norm`; forward + backward of [8, 512, 768], two threads: 8.0 ms against
    31.4 ms with `_LayerNormFunction`, benchmarks/bench_kernels.py), else `_LayerNormFunction`'s backward when
    training."""

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None or self.bias is None:
            return super().forward(x)
        if len(self._normalized_shape) == 1 and cpu_kernels.applies(x, self.weight, self.bias):
            return cpu_kernels.layer_norm(x, self.weight, self.bias, self._epsilon)
        if _wants_fast_grad(x, self.weight, self.bias):
            return _LayerNormFunction.apply(x, self.weight, self.bias, self._epsilon)
        return super().forward(x)


def _fuses_add_and_norm(projection: nn.Layer, x: Tensor, dropout: nn.Layer, residual: Tensor,
                        norm: nn.Layer) -> bool:
    """Whether `add_and_norm` can run as the C kernels' one pass: a `fusable_linear` projection, our Dropout in its
    default mode, our layer norm over the last axis with both parameters, float32 CPU tensors in the dynamic graph;
    no forward hooks on the dropout or the norm either."""
    return (fusable_linear(projection) and type(dropout) is Dropout and type(norm) is LayerNorm
            and not any(layer._forward_pre_hooks or layer._forward_post_hooks for layer in (dropout, norm))
            and norm.weight is not None and norm.bias is not None and len(norm._normalized_shape) == 1
            and dropout.p < 1 and dropout.axis is None and dropout.mode == "upscale_in_train"
            and cpu_kernels.applies(x, residual, norm.weight, norm.bias))


def add_and_norm(projection: nn.Layer, x: Tensor, dropout: nn.Layer, residual: Tensor, norm: nn.Layer) -> Tensor:
    """norm(residual + dropout(projection(x))): the "add & norm" that ends every attention and feed-forward
    sublayer.

    On the C kernels the projection's bias, the dropout, the residual sum and the layer norm are one pass over the
    rows each way (`cpu_kernels.add_norm`) instead of four, and one autograd node instead of four. Measured with
    the fused bias + GELU, small-base training step at 8 x 128: 0.6% faster (RESULTS.md "Training step"; the
    separate passes ran near memory bandwidth already). The dropout mask is the one `Dropout` would draw; in
    evaluation there is none.
    """
    if not _fuses_add_and_norm(projection, x, dropout, residual, norm):
        return norm(residual + dropout(projection(x)))
    p = dropout.p if dropout.training else 0.0
    return cpu_kernels.add_norm(projection.product(x), projection.bias, residual, norm.weight, norm.bias, p,
                                norm._epsilon)
