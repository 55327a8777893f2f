"""Building blocks that replace slow Paddle CPU paths: they must compute exactly what Paddle's own ops compute."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlefunnel.modeling import cpu_kernels, ops
from paddlefunnel.modeling.ops import LayerNorm, Linear


def _grads(layer, x: paddle.Tensor, upstream: paddle.Tensor) -> list[np.ndarray]:
    x = x.detach()
    x.stop_gradient = False
    out = layer(x)
    (out * upstream).sum().backward()
    grads = [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]
    layer.clear_gradients()
    return grads


@pytest.mark.parametrize("shape", [(3, 7, 16), (5, 16)])
def test_layer_norm_forward_and_backward_equal_paddles(shape):
    paddle.seed(0)
    ours, native = LayerNorm(16, epsilon=1e-9), paddle.nn.LayerNorm(16, epsilon=1e-9)
    for layer in (ours, native):
        layer.weight.set_value(np.linspace(0.5, 1.5, 16).astype("float32"))
        layer.bias.set_value(np.linspace(-0.2, 0.2, 16).astype("float32"))
    rng = np.random.default_rng(0)
    x = paddle.to_tensor((rng.standard_normal(shape) * 3 + 1).astype("float32"))
    upstream = paddle.to_tensor(rng.standard_normal(shape).astype("float32"))
    for got, expected in zip(_grads(ours, x, upstream), _grads(native, x, upstream)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_takes_its_fast_backward_only_when_training(monkeypatch):
    """Where the C kernels are not in use (cpu_kernels.disabled, or not built)."""
    monkeypatch.setattr(cpu_kernels, "applies", lambda *tensors: False)
    calls = []
    original = ops._LayerNormFunction.apply
    monkeypatch.setattr(ops._LayerNormFunction, "apply", lambda *args: calls.append(1) or original(*args))
    layer = LayerNorm(8)
    x = paddle.rand([2, 8])
    x.stop_gradient = False
    layer(x).sum().backward()
    assert len(calls) == 1 and layer.weight.grad is not None
    with paddle.no_grad():
        layer(x)
    frozen = LayerNorm(8)
    frozen.weight.stop_gradient = frozen.bias.stop_gradient = True
    frozen(x).sum().backward()  # Paddle's own op: no gradient is asked for the frozen parameters
    assert len(calls) == 1 and frozen.weight.grad is None and x.grad is not None


def _same_linears() -> tuple[Linear, paddle.nn.Linear]:
    """Our Linear and Paddle's with equal weights and a non-zero bias."""
    paddle.seed(0)
    ours = Linear(6, 4)
    native = paddle.nn.Linear(6, 4)
    native.weight.set_value(ours.weight.numpy())
    for layer in (ours, native):
        layer.bias.set_value(np.arange(4, dtype="float32"))
    return ours, native


def test_linear_bias_gradient_equals_paddles():
    ours, native = _same_linears()
    rng = np.random.default_rng(1)
    x = paddle.to_tensor(rng.standard_normal((3, 5, 6)).astype("float32"))
    upstream = paddle.to_tensor(rng.standard_normal((3, 5, 4)).astype("float32"))
    for got, expected in zip(_grads(ours, x, upstream), _grads(native, x, upstream)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_cpu_dropout_keeps_one_minus_p_scaled_and_follows_paddle_seed():
    dropout = ops.Dropout(0.1)
    dropout.train()
    x = paddle.full([200, 1000], 2.0)
    x.stop_gradient = False
    paddle.seed(7)
    out = dropout(x)
    values = out.numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.9) < 0.005  # 200,000 draws: the binomial spread is 0.0007
    np.testing.assert_allclose(values[kept], 2.0 / 0.9, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.9, rtol=1e-6)  # gradient flows through kept entries only
    again = dropout(x).numpy()
    assert (again != values).any()  # a new mask on every call
    paddle.seed(7)
    np.testing.assert_array_equal(dropout(x).numpy(), values)  # paddle.seed makes it repeatable
    dropout.eval()
    assert dropout(x) is x


def test_linear_without_gradients_equals_paddles():
    ours, native = _same_linears()
    x = paddle.to_tensor(np.random.default_rng(2).standard_normal((3, 5, 6)).astype("float32"))
    with paddle.no_grad():
        got, expected = ours(x), native(x)
    assert got.shape == [3, 5, 4]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["mean", "max", "min"])
def test_pooling_gather_path_equals_the_slicing_path(mode, monkeypatch):
    """The dynamic graph pools by gathering each window's two members; the slicing path (what programs with an
    unknown length run) must give the same values and gradients for every length and option."""
    from paddlefunnel.modeling import pooling

    rng = np.random.default_rng(0)
    for length in range(1, 12):
        for separate_cls in (True, False):
            for truncate_seq in (True, False):
                data = rng.standard_normal((2, length, 3)).astype("float32")
                data[:, 1::3] = data[:, 0::3][:, : data[:, 1::3].shape[1]]  # ties, for max / min
                upstream = None
                results = []
                for gather in (True, False):
                    monkeypatch.setattr(pooling, "in_dynamic_graph", lambda gather=gather: gather)
                    x = paddle.to_tensor(data, stop_gradient=False)
                    out = pooling.pool_sequence(x, mode, separate_cls, truncate_seq)
                    if upstream is None:
                        upstream = paddle.to_tensor(rng.standard_normal(out.shape).astype("float32"))
                    (out * upstream).sum().backward()
                    results.append((out.numpy(), x.grad.numpy()))
                (out_g, grad_g), (out_s, grad_s) = results
                case = (length, separate_cls, truncate_seq)
                np.testing.assert_array_equal(out_g, out_s, err_msg=str(case))
                np.testing.assert_allclose(grad_g, grad_s, rtol=1e-6, atol=1e-7, err_msg=str(case))
                expected_len = pooling.pooled_length(length, separate_cls, truncate_seq)
                assert out_g.shape == (2, expected_len, 3), case
