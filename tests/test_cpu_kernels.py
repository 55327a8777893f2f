"""The C training kernels (modeling/cpu_kernels.py): built by the install, on Paddle's OpenMP runtime, and computing
what Paddle's own ops compute (forward and backward, at one and two threads; calls below 65,536 floats of work run
on one thread whatever the count, so each kernel gets at least one case above that)."""

from __future__ import annotations

import contextlib
import ctypes.util
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from model_utils import PARITY_OPTIONS, tiny
from paddlefunnel.modeling import cpu_kernels, positions
from paddlefunnel.modeling.ops import Dropout, LayerNorm, Linear, add_and_norm, add_bias
from paddlefunnel.parity import run_case
from paddlefunnel.runtime import dynamic_graph_threads, use_all_cpu_cores
from paddlefunnel.training import AdamW


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    saved = dynamic_graph_threads()
    use_all_cpu_cores(request.param)
    yield request.param
    use_all_cpu_cores(saved)


def _leaf(array: np.ndarray) -> paddle.Tensor:
    tensor = paddle.to_tensor(array)
    tensor.stop_gradient = False
    return tensor


def test_library_is_built_and_runs_on_paddles_openmp_runtime():
    # `make test` installs with the compiler these machines have: a missing library is a failed build, not a skip.
    assert cpu_kernels.available(), cpu_kernels.describe()
    assert "libiomp5.so" in cpu_kernels.describe()  # MKL's runtime: no second thread pool competing with it


def test_version_says_whether_the_kernels_are_in_use(capsys):
    from paddlefunnel.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert "C kernels: in use, on libiomp5.so" in " ".join(capsys.readouterr().out.split())


def test_use_all_cpu_cores_gives_the_kernels_paddles_thread_count():
    saved = dynamic_graph_threads()
    try:
        assert use_all_cpu_cores(1) == 1 and cpu_kernels.library().pf_get_threads() == 1
        assert use_all_cpu_cores(2) == 2 and cpu_kernels.library().pf_get_threads() == 2
    finally:
        use_all_cpu_cores(saved)


@pytest.mark.parametrize("shape", [(3, 5, 16), (1, 7), (100, 771)])  # the last one is split across threads
def test_layer_norm_equals_paddles(shape, threads):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype("float32")
    weight = rng.uniform(0.5, 1.5, shape[-1]).astype("float32")
    bias = rng.standard_normal(shape[-1]).astype("float32")
    upstream = paddle.to_tensor(rng.standard_normal(shape).astype("float32"))
    results = []
    for run in (lambda a, w, b: cpu_kernels.layer_norm(a, w, b, 1e-12),
                lambda a, w, b: F.layer_norm(a, a.shape[-1:], w, b, 1e-12)):
        leaves = [_leaf(x), _leaf(weight), _leaf(bias)]
        out = run(*leaves)
        (out * upstream).sum().backward()
        results.append([out.numpy()] + [leaf.grad.numpy() for leaf in leaves])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def test_layer_norm_reads_a_strided_input():
    x = paddle.to_tensor(np.random.default_rng(1).standard_normal((6, 4)).astype("float32")).transpose([1, 0])
    weight, bias = paddle.ones([6]), paddle.zeros([6])
    np.testing.assert_allclose(cpu_kernels.layer_norm(x, weight, bias, 1e-12).numpy(),
                               F.layer_norm(x, [6], weight, bias, 1e-12).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2000, 64)])
def test_column_sum_equals_paddles(shape, threads):
    x = np.random.default_rng(2).standard_normal(shape).astype("float32")
    np.testing.assert_allclose(cpu_kernels.column_sum(paddle.to_tensor(x)).numpy(),
                               x.reshape(-1, shape[-1]).sum(0), rtol=1e-5, atol=1e-5)


def test_dropout_keeps_one_minus_p_scaled_and_its_gradient_uses_the_same_mask(threads):
    x = _leaf(np.full([300, 1001], 2.0, dtype="float32"))  # odd count: the last element has its own draw
    paddle.seed(11)
    out = cpu_kernels.dropout(x, 0.25)
    values = out.numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.75) < 0.004  # 300,300 draws: the binomial spread is 0.0008
    np.testing.assert_allclose(values[kept], 2.0 / 0.75, rtol=1e-6)
    (out * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept * (3.0 / 0.75), rtol=1e-6)
    # No structure along either axis: every row's and every column's kept share is near 0.75.
    assert np.abs(kept.mean(axis=1) - 0.75).max() < 0.06 and np.abs(kept.mean(axis=0) - 0.75).max() < 0.11
    paddle.seed(11)
    np.testing.assert_array_equal(cpu_kernels.dropout(x, 0.25).numpy(), values)  # paddle.seed makes it repeatable
    again = cpu_kernels.dropout(x, 0.25).numpy() != 0
    assert abs(np.corrcoef(kept.ravel(), again.ravel())[0, 1]) < 0.01  # the next call draws an unrelated mask


def test_dropout_mask_does_not_depend_on_the_thread_count():
    x = paddle.ones([1001, 17])
    masks = []
    saved = dynamic_graph_threads()
    for count in (1, 2, 3):
        use_all_cpu_cores(count)
        paddle.seed(5)
        masks.append(cpu_kernels.dropout(x, 0.5).numpy())
    use_all_cpu_cores(saved)
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])


def _shifted_scores_and_grads(scores_of, q_len: int, keys: int, shift: int, seed: int):
    rng = np.random.default_rng(seed)
    queries = _leaf(rng.standard_normal((2, 3, q_len, 8)).astype("float32"))
    distances = _leaf(rng.standard_normal((1, 3, shift * q_len + keys, 8)).astype("float32"))
    upstream = paddle.to_tensor(rng.standard_normal((2, 3, q_len, keys)).astype("float32"))
    out = scores_of(queries, distances)
    (out * upstream).sum().backward()
    return [out.numpy(), queries.grad.numpy(), distances.grad.numpy()]


@pytest.mark.parametrize("form", ["full", "banded"])
@pytest.mark.parametrize("q_len,keys,shift", [(9, 9, 1), (5, 9, 2), (70, 70, 1), (64, 128, 2), (260, 260, 1)])
def test_relative_shift_equals_paddles_reshapes_and_slices(form, q_len, keys, shift, threads):
    if form == "full":
        def scores_of(q, r):
            return positions.full_relative_scores(q, r, keys, shift)
    else:  # chunks of 8 queries: several chunks, and a padded last one where q_len is not a multiple of 8
        def scores_of(q, r):
            return positions.banded_relative_scores(q, r, keys, shift, 8)
    got = _shifted_scores_and_grads(scores_of, q_len, keys, shift, seed=q_len)
    with cpu_kernels.disabled():
        assert not cpu_kernels.applies(paddle.ones([1]))
        expected = _shifted_scores_and_grads(scores_of, q_len, keys, shift, seed=q_len)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_kernels_are_not_used_outside_float32_cpu_dynamic_graphs():
    assert cpu_kernels.applies(paddle.ones([2]))
    assert not cpu_kernels.applies(paddle.ones([2], dtype="float16"))
    assert not cpu_kernels.applies(paddle.ones([2]), paddle.ones([2], dtype="float64"))


def _forward_and_grads(run, inputs: list[np.ndarray], upstream: np.ndarray) -> list[np.ndarray]:
    leaves = [_leaf(array) for array in inputs]
    out = run(*leaves)
    (out * paddle.to_tensor(upstream)).sum().backward()
    return [out.numpy()] + [leaf.grad.numpy() for leaf in leaves]


def _assert_kernel_matches(kernel, native, inputs: list[np.ndarray], rtol: float, atol: float) -> None:
    upstream = np.random.default_rng(9).standard_normal(native(*map(paddle.to_tensor, inputs)).shape)
    upstream = upstream.astype("float32")
    got = _forward_and_grads(kernel, inputs, upstream)
    for a, b in zip(got, _forward_and_grads(native, inputs, upstream)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_softmax_equals_paddles_with_masked_entries(threads):
    scores = np.random.default_rng(3).standard_normal((4, 12, 50, 37)).astype("float32") * 4
    scores[..., 30:] -= 1e30  # masked keys, as attention's penalty makes them: exactly 0 probability
    _assert_kernel_matches(cpu_kernels.softmax, lambda x: F.softmax(x, axis=-1), [scores], 1e-6, 2e-6)
    assert (cpu_kernels.softmax(paddle.to_tensor(scores)).numpy()[..., 30:] == 0).all()


def test_exp_inside_softmax_is_within_two_ulp_of_numpy():
    # softmax of [0, t] is [1, e^t] / (1 + e^t): with t across float's whole range, compare e^t = p1 / p0.
    t = np.linspace(-80, 80, 20001).astype("float32")
    pairs = np.stack([np.zeros_like(t), t], axis=1)
    probs = cpu_kernels.softmax(paddle.to_tensor(pairs)).numpy().astype("float64")
    expected = np.exp(t.astype("float64"))
    np.testing.assert_allclose(probs[:, 1] / probs[:, 0], expected, rtol=5e-7)


def test_gelu_tanh_matches_the_exact_function_and_paddles(threads):
    x = np.concatenate([np.linspace(-12, 12, 4001), np.random.default_rng(4).standard_normal(99999) * 3])
    x = x.astype("float32")
    exact = x.astype("float64")
    u = np.sqrt(2 / np.pi) * (exact + 0.044715 * exact**3)
    value = 0.5 * exact * (1 + np.tanh(u))
    slope = 0.5 * (1 + np.tanh(u)) + 0.5 * exact * (1 - np.tanh(u) ** 2) * np.sqrt(2 / np.pi) * (
        1 + 3 * 0.044715 * exact**2)
    out, grad = _forward_and_grads(cpu_kernels.gelu_tanh, [x], np.ones_like(x))
    np.testing.assert_allclose(out, value, rtol=3e-6, atol=1e-12)  # where tanh(u) rounds to -1 too (x < -5)
    np.testing.assert_allclose(grad, slope, rtol=3e-6, atol=1e-7)  # the slope crosses 0 near x = -0.75
    # Paddle's (and the reference's) 0.5 x (1 + tanh(u)) in float32 lose those tiny values (and their slopes, up
    # to 1e-5 where tanh(u) rounds to -1): the values agree to 7e-7.
    np.testing.assert_allclose(out, F.gelu(paddle.to_tensor(x), approximate=True).numpy(), rtol=2e-6, atol=1e-6)


def test_split_and_merge_heads_equal_transposes(threads):
    x = np.random.default_rng(5).standard_normal((8, 37, 12, 64)).astype("float32")
    _assert_kernel_matches(cpu_kernels.swap_middle_axes, lambda v: v.transpose([0, 2, 1, 3]), [x], 0, 0)


def test_add_bias_forward_and_its_gradient_equal_paddles(threads):
    rng = np.random.default_rng(6)
    x, bias = rng.standard_normal((200, 9, 40)).astype("float32"), rng.standard_normal(40).astype("float32")
    # the bias gradient sums 1,800 rows: ours in double, Paddle's in float
    _assert_kernel_matches(add_bias, lambda a, b: a + b, [x, bias], 5e-5, 1e-5)


def test_concat_refuses_shapes_that_differ_off_its_axis():
    with pytest.raises(ValueError, match=r"axis 1: shapes \[\[2, 3, 4\], \[2, 3, 5\]\] differ"):
        cpu_kernels.concat([paddle.ones([2, 3, 4]), paddle.ones([2, 3, 5])], 1)


def test_concat_gives_gradients_to_strided_and_constant_inputs(threads):
    rng = np.random.default_rng(7)
    base = _leaf(rng.standard_normal((3, 6, 4)).astype("float32"))
    constant = paddle.ones([3, 2, 4])
    strided = base[:, 1:3]  # a strided view: concat copies it to dense memory first
    upstream = paddle.to_tensor(rng.standard_normal((3, 10, 4)).astype("float32"))
    got_out = cpu_kernels.concat([base, strided, constant], 1)
    (got_out * upstream).sum().backward()
    got = base.grad.numpy()
    base.clear_gradient()
    expected_out = paddle.concat([base, base[:, 1:3], constant], axis=1)
    (expected_out * upstream).sum().backward()
    np.testing.assert_array_equal(got_out.numpy(), expected_out.numpy())
    np.testing.assert_allclose(got, base.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_without_the_built_library_the_model_runs_paddles_ops(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_kernels, "_state", {})
    monkeypatch.setattr(cpu_kernels, "library_path", lambda: None)
    assert not cpu_kernels.available() and "not built" in cpu_kernels.describe()
    x = _leaf(np.random.default_rng(8).standard_normal((4, 16)).astype("float32"))
    LayerNorm(16)(x).sum().backward()  # Paddle's layer norm with _LayerNormFunction's backward
    assert x.grad is not None
    broken = tmp_path / "_cpu_kernels.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setattr(cpu_kernels, "_state", {})
    monkeypatch.setattr(cpu_kernels, "library_path", lambda: broken)
    assert not cpu_kernels.available() and "does not load" in cpu_kernels.describe()
    monkeypatch.setattr(cpu_kernels, "_state", {})
    monkeypatch.setattr(cpu_kernels, "library_path", lambda: Path(ctypes.util.find_library("m")))  # no pf_abi_version
    assert not cpu_kernels.available() and "from another version" in cpu_kernels.describe()


def _adamw_problem(seed: int = 3):
    """Two linear layers (120,400 + 802 parameters: the large ones above the one-thread limit), one with half the
    learning rate, weight decay on two of the four tensors, and a batch to fit."""
    paddle.seed(seed)
    layers = [paddle.nn.Linear(300, 400), paddle.nn.Linear(400, 2)]
    layers[1].weight.optimize_attr["learning_rate"] = 0.5
    params = [p for layer in layers for p in layer.parameters()]
    decayed = {layers[0].weight.name, layers[1].bias.name}
    x = paddle.to_tensor(np.random.default_rng(seed).standard_normal((64, 300)).astype("float32"))

    def loss():
        return (layers[1](paddle.tanh(layers[0](x))) ** 2).mean()

    return params, decayed, loss


def _adamw_steps(optimizer, loss, scheduler, steps: int) -> None:
    for _ in range(steps):
        loss().backward()
        optimizer.step()
        optimizer.clear_grad(set_to_zero=False)
        scheduler.step()


def _adamw(cls, params, decayed, scheduler):
    return cls(learning_rate=scheduler, parameters=params, weight_decay=0.05, epsilon=1e-6,
               apply_decay_param_fun=lambda name: name in decayed)


def _max_ulp() -> int:
    """Paddle's update on AVX-512 machines is JIT code with the same fused multiply-adds as the kernel (bit-equal);
    elsewhere it runs another implementation, which may round differently."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return 0 if " avx512f" in flags else 4


def _adamw_run(cls, steps: int) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Parameters after `steps` AdamW steps under a warm-up schedule, and the optimizer's state_dict with each
    parameter's name replaced by its index (names differ between runs)."""
    params, decayed, loss = _adamw_problem()
    scheduler = paddle.optimizer.lr.LambdaDecay(1e-2, lambda step: (step + 1) / 3)
    optimizer = _adamw(cls, params, decayed, scheduler)
    _adamw_steps(optimizer, loss, scheduler, steps)
    state = {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, paddle.Tensor):
            index = next(i for i, p in enumerate(params) if key.startswith(p.name + "_"))
            state[f"{index}{key[len(params[index].name):]}"] = value.numpy()
    return [p.numpy() for p in params], state


def test_adamw_update_equals_paddles_adamw_and_keeps_its_state(threads, monkeypatch):
    want_params, want_state = _adamw_run(paddle.optimizer.AdamW, 4)
    calls = []
    real_update = cpu_kernels.adamw_update
    monkeypatch.setattr(cpu_kernels, "adamw_update",
                        lambda updates, *args: calls.append(len(updates)) or real_update(updates, *args))
    got_params, got_state = _adamw_run(AdamW, 4)
    assert calls == [len(got_params)] * 4  # every parameter, in one call per step, through the kernel
    for got, want in zip(got_params, want_params):
        np.testing.assert_array_max_ulp(got, want, maxulp=_max_ulp())
    # the same accumulators (two moments, two bias-correction powers per parameter) under the same names: a
    # checkpoint of either optimizer loads into the other
    assert sorted(got_state) == sorted(want_state) and len(got_state) == 4 * len(got_params)
    for key, want in want_state.items():
        np.testing.assert_array_max_ulp(got_state[key], want, maxulp=_max_ulp())


def test_adamw_falls_back_to_paddles_update_where_the_kernels_do_not_apply(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "adamw_update", lambda *args: pytest.fail("the kernel ran"))
    cases = [(lambda params: AdamW(parameters=params, amsgrad=True), contextlib.nullcontext),
             (lambda params: AdamW(parameters=params, beta1=paddle.to_tensor([0.9])), contextlib.nullcontext),
             (lambda params: AdamW(parameters=params), cpu_kernels.disabled)]
    for build, context in cases:
        params, _, loss = _adamw_problem()
        before = [p.numpy().copy() for p in params]
        with context():
            optimizer = build(params)
            loss().backward()
            optimizer.step()
        assert all(np.abs(p.numpy() - b).max() > 0 for p, b in zip(params, before))  # Paddle's update ran


# ---- fused kernels: each equals the composition of the ops it replaces ------------------------------------------

def test_bias_gelu_equals_gelu_of_the_biased_input(threads):
    rng = np.random.default_rng(10)
    x, bias = rng.standard_normal((6, 120, 96)).astype("float32") * 3, rng.standard_normal(96).astype("float32")
    _assert_kernel_matches(cpu_kernels.bias_gelu_tanh, lambda a, b: cpu_kernels.gelu_tanh(add_bias(a, b)), [x, bias],
                           1e-6, 1e-5)


@pytest.mark.parametrize("count", [1, 3])
def test_biased_heads_equal_scaled_biased_transposes(count, threads):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 800, 4 * 8)).astype("float32")
    biases = [rng.standard_normal((4, 8)).astype("float32") for _ in range(count)]
    upstream = [paddle.to_tensor(rng.standard_normal((3, 4, 800, 8)).astype("float32")) for _ in range(count)]

    def outputs_and_grads(run):
        leaves = [_leaf(a) for a in [x, *biases]]
        outs = run(leaves[0], leaves[1:])
        sum((out * up).sum() for out, up in zip(outs, upstream)).backward()
        return [out.numpy() for out in outs] + [leaf.grad.numpy() for leaf in leaves]

    got = outputs_and_grads(lambda a, bs: cpu_kernels.biased_heads(a, bs, 4, 0.125))
    expected = outputs_and_grads(lambda a, bs: [
        (a * 0.125 + (b * 0.125).reshape([-1])).reshape([3, 800, 4, 8]).transpose([0, 2, 1, 3]) for b in bs])
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _attention_terms(rng, batch: int, heads: int, q_len: int, keys: int, shift: int):
    types_q, types_k = rng.integers(0, 2, (batch, q_len)), rng.integers(0, 2, (batch, keys))
    same = (types_q[:, :, None] == types_k[:, None, :]).astype("float32")
    diff = 1.0 - same
    diff[:, 0], same[:, 0] = 0.0, 0.0  # a <cls> query takes no token-type term
    mask = np.ones((batch, keys), "float32")
    mask[0, keys - 3:] = 0.0
    return {
        "content": rng.standard_normal((batch, heads, q_len, keys)).astype("float32"),
        "queries": rng.standard_normal((batch, heads, q_len, 8)).astype("float32"),
        "distances": rng.standard_normal((1, heads, shift * q_len + keys, 8)).astype("float32"),
        "uv": rng.standard_normal((batch, heads, q_len, 2)).astype("float32"),
        "diff": diff, "same": same, "key_bias": -1e6 * (1.0 - mask),
    }


@pytest.mark.parametrize("cls", [True, False])
@pytest.mark.parametrize("band", [None, 8])
@pytest.mark.parametrize("q_len,keys,shift", [(9, 9, 1), (21, 40, 2), (130, 130, 1)])
def test_attention_softmax_equals_the_sum_of_its_terms_then_softmax(q_len, keys, shift, band, cls, threads):
    """The fused kernel against Paddle's ops on the same terms: content + shifted position scores (the <cls> row
    and column zeroed with `cls`) + u * diff + v * same + key bias, then softmax; values and the gradients of
    content, queries, distances and (u, v)."""
    terms = _attention_terms(np.random.default_rng(q_len + keys), 2, 3, q_len, keys, shift)
    upstream = paddle.to_tensor(np.random.default_rng(1).standard_normal((2, 3, q_len, keys)).astype("float32"))
    constants = {name: paddle.to_tensor(terms[name]) for name in ("diff", "same", "key_bias")}

    def fused(content, queries, distances, uv):
        if band is None:
            position, n_chunks, chunk, width = paddle.matmul(queries, distances, transpose_y=True), 1, q_len, (
                shift * q_len + keys)
        else:
            position, n_chunks, chunk, width = positions.banded_unshifted_scores(queries, distances, keys, shift, band)
        return cpu_kernels.attention_softmax(content, position, uv, constants["diff"], constants["same"],
                                             constants["key_bias"], n_chunks, chunk, width, shift, cls)

    def composed(content, queries, distances, uv):
        position = positions.full_relative_scores(queries, distances, keys, shift)
        if cls:
            keep = np.ones((q_len, keys), "float32")
            keep[0, :], keep[:, 0] = 0.0, 0.0
            position = position * paddle.to_tensor(keep)
        token_type = (uv[..., :1] * constants["diff"][:, None] + uv[..., 1:] * constants["same"][:, None])
        return F.softmax(content + position + token_type + constants["key_bias"][:, None, None], axis=-1)

    def values_and_grads(run):
        leaves = [_leaf(terms[name]) for name in ("content", "queries", "distances", "uv")]
        out = run(*leaves)
        (out * upstream).sum().backward()
        return [out.numpy()] + [leaf.grad.numpy() for leaf in leaves]

    got, expected = values_and_grads(fused), values_and_grads(composed)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
    assert (got[0][0, :, :, keys - 3:] == 0).all()  # masked keys: exactly 0


@pytest.mark.parametrize("training", [True, False])
def test_add_and_norm_equals_dropout_residual_and_layer_norm(training, threads):
    """The fused end of a sublayer against the separate kernels, with the same dropout mask (same key: the same
    `paddle.seed`), forward and every gradient."""
    paddle.seed(12)
    projection, dropout, norm = Linear(24, 16), Dropout(0.25), LayerNorm(16)
    for layer in (projection, dropout, norm):
        layer.train() if training else layer.eval()
    rng = np.random.default_rng(12)
    x = rng.standard_normal((8, 600, 24)).astype("float32")
    residual = rng.standard_normal((8, 600, 16)).astype("float32")
    upstream = paddle.to_tensor(rng.standard_normal((8, 600, 16)).astype("float32"))
    parameters = [projection.weight, projection.bias, norm.weight, norm.bias]

    def values_and_grads(run):
        leaves = [_leaf(x), _leaf(residual)]
        paddle.seed(13)
        out = run(*leaves)
        (out * upstream).sum().backward()
        grads = [leaf.grad.numpy() for leaf in leaves] + [p.grad.numpy() for p in parameters]
        for p in parameters:
            p.clear_gradient()
        return [out.numpy()] + grads

    got = values_and_grads(lambda a, r: add_and_norm(projection, a, dropout, r, norm))
    expected = values_and_grads(lambda a, r: norm(r + dropout(projection(a))))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    without_dropout = norm(paddle.to_tensor(residual) + projection(paddle.to_tensor(x))).numpy()
    assert (np.abs(got[0] - without_dropout).max() > 1e-3) == training  # the mask did drop entries in training


@pytest.mark.parametrize("option", ["default", "no_separate_cls", "no_pool_q_only", "four_blocks"])
def test_model_matches_the_reference_without_the_kernels_too(option):
    """The parity grid runs on the kernels; Paddle's own ops (GPU, float16, or no C compiler) must agree too."""
    with cpu_kernels.disabled():
        report = run_case("FunnelForSequenceClassification", tiny(**PARITY_OPTIONS[option]), seq_len=27,
                          batch_size=2)
    assert report.ok(), report.worst()
    assert "grad.inputs_embeds" in report.backward


def test_fused_attention_kernels_refuse_sizes_that_would_read_past_a_buffer():
    content, uv = paddle.zeros([2, 3, 5, 7]), paddle.zeros([2, 3, 5, 2])
    pairs = paddle.zeros([2, 5, 7])
    with pytest.raises(ValueError, match="sizes {'position'"):
        cpu_kernels.attention_softmax(content, paddle.zeros([2, 3, 5, 16]), uv, pairs, pairs, None, 1, 5, 17, 1, True)
    with pytest.raises(ValueError, match="sizes {'pair_same'"):
        cpu_kernels.attention_softmax(content, paddle.zeros([2, 3, 5, 12]), uv, pairs, paddle.zeros([2, 7, 5]), None,
                                      1, 5, 12, 1, True)
    with pytest.raises(ValueError, match=r"x \[2, 5, 12\] must be \[B, L, 5 \* D\]"):
        cpu_kernels.biased_heads(paddle.zeros([2, 5, 12]), [paddle.zeros([12])], 5)
    with pytest.raises(ValueError, match="each bias 12 values"):
        cpu_kernels.biased_heads(paddle.zeros([2, 5, 12]), [paddle.zeros([3, 3])], 3)
