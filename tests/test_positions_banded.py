"""The banded relative-position term equals the full-then-shift one (values and gradients), and the model using
it still matches transformers."""

import numpy as np
import paddle
import pytest
from paddle.static import InputSpec

from model_utils import PARITY_OPTIONS, tiny
from paddlefunnel import FunnelConfig, FunnelModel
from paddlefunnel.deploy.export import INPUT_NAMES, ExportedHead
from paddlefunnel.modeling import positions
from paddlefunnel.modeling.positions import (
    PositionGrid,
    band_chunk,
    banded_relative_scores,
    full_relative_scores,
    pooled_grid,
    relative_distances,
)
from paddlefunnel.parity import FORWARD_TOLERANCE, run_case


def _inputs(batch, n_head, q_len, n_dist, d_head, seed):
    rng = np.random.default_rng(seed)
    q = paddle.to_tensor(rng.standard_normal((batch, n_head, q_len, d_head)).astype("float32"), stop_gradient=False)
    r = paddle.to_tensor(rng.standard_normal((1, n_head, n_dist, d_head)).astype("float32"), stop_gradient=False)
    return q, r


def _value_and_grads(fn, q, r, weights):
    q.clear_gradient()
    r.clear_gradient()
    out = fn(q, r)
    (out * weights).sum().backward()
    return out.numpy(), q.grad.numpy().copy(), r.grad.numpy().copy()


def _model_shapes():
    """(Lq, Lk, shift) of every attention of a separate_cls / truncate_seq / pool_q_only model at length 23, and
    of one without them: the grids the position tables are built for (odd lengths, pooled queries, strides)."""
    shapes = set()
    for separate_cls, truncate_seq in [(True, True), (False, False), (True, False)]:
        grid = PositionGrid(0, 1, 23)
        for _ in range(3):
            shapes.add((grid.count, grid.count, 1))
            pooled = pooled_grid(grid, separate_cls, truncate_seq)
            shapes.add((pooled.count, grid.count, 2))  # pool_q_only: pooled queries, previous block's keys
            grid = pooled
    return sorted(shapes)


@pytest.mark.parametrize("chunk", [1, 3, 4, 8, 64])
@pytest.mark.parametrize("q_len,context_len,shift", [(16, 16, 1), (17, 17, 1), (8, 16, 2), (9, 17, 2),
                                                     (12, 23, 2), (5, 5, 1), *_model_shapes()])
def test_banded_equals_full_forward_and_backward(q_len, context_len, shift, chunk):
    n_dist = shift * q_len + context_len  # what `relative_distances` yields for these grids
    q, r = _inputs(2, 3, q_len, n_dist, 5, seed=q_len * 100 + context_len)
    weights = paddle.to_tensor(np.random.default_rng(1).standard_normal((2, 3, q_len, context_len)).astype("float32"))
    full = _value_and_grads(lambda a, b: full_relative_scores(a, b, context_len, shift), q, r, weights)
    banded = _value_and_grads(lambda a, b: banded_relative_scores(a, b, context_len, shift, chunk), q, r, weights)
    assert banded[0].shape == (2, 3, q_len, context_len)
    for got, expected in zip(banded, full):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_distance_count_is_what_the_band_assumes():
    """`banded_relative_scores` reads T = shift * Lq + Lk distances, the count the tables are built with."""
    for q_len, k_len, shift in _model_shapes():
        query = PositionGrid(0, shift, q_len)
        key = PositionGrid(0, 1, k_len)
        assert relative_distances(query, key, shift)[1] == shift * q_len + k_len


def test_band_reads_only_rows_of_the_table():
    rows = positions.band_rows(q_len=10, n_dist=30, context_len=20, shift=1, chunk=4)
    assert rows.min() >= 0 and rows.max() == 29
    assert rows.size == 3 * (4 + 20)  # three chunks (the last one padded) of shift * chunk + Lk rows


def test_band_is_chosen_by_shape_only():
    assert band_chunk(512, 512) == positions.BAND_CHUNK
    assert band_chunk(1024, positions.BAND_TALL_FROM) == 2 * positions.BAND_CHUNK
    assert band_chunk(positions.BAND_CHUNK - 1, 512) is None
    assert band_chunk(128, positions.BAND_MIN_KEYS - 1) is None
    assert band_chunk(paddle.to_tensor([512]), 512) is None  # length unknown while tracing: full form


@pytest.fixture
def small_band(monkeypatch):
    """Banding from 8 keys on, 4 queries per chunk: active in every layer of a tiny model at a short length."""
    monkeypatch.setattr(positions, "BAND_CHUNK", 4)
    monkeypatch.setattr(positions, "BAND_MIN_KEYS", 8)
    calls = []
    original = positions.banded_unshifted_scores

    def counted(*args):
        calls.append(args[3])  # the shift: 1 within blocks, 2 in pooling layers
        return original(*args)

    monkeypatch.setattr(positions, "banded_unshifted_scores", counted)
    return calls


def _assert_parity(report):
    assert report.ok(), report.worst()
    assert "grad.inputs_embeds" in report.backward


@pytest.mark.parametrize("option", ["default", "no_separate_cls", "no_truncate_seq", "no_pool_q_only",
                                    "block_repeats", "four_blocks"])
def test_model_with_small_band_matches_reference(small_band, option):
    _assert_parity(run_case("FunnelModel", tiny(**PARITY_OPTIONS[option]), seq_len=27, batch_size=2))
    assert 1 in small_band
    assert (2 in small_band) == PARITY_OPTIONS[option].get("pool_q_only", True)


def test_model_at_banded_length_matches_reference():
    """The shipped thresholds: seq 300 bands the first block (300 keys, and the pooling layer's 150 queries)."""
    assert band_chunk(300, 300) is not None
    calls = []
    original = positions.banded_unshifted_scores
    positions.banded_unshifted_scores = lambda *args: calls.append(args[3]) or original(*args)
    try:
        report = run_case("FunnelBaseModel", tiny(block_sizes=[1, 1]), seq_len=300, batch_size=1)
    finally:
        positions.banded_unshifted_scores = original
    _assert_parity(report)
    assert sorted(set(calls)) == [1, 2]
    assert report.max_forward <= FORWARD_TOLERANCE


@pytest.mark.filterwarnings("ignore:Tensor do not have")  # Paddle's note on static values; harmless here
def test_to_static_with_known_length_uses_the_band(small_band):
    """A program traced for a fixed sequence length (dynamic batch) bands as the dynamic graph does."""
    model = FunnelModel(FunnelConfig(**tiny()))
    model.eval()
    rng = np.random.default_rng(0)
    types = np.zeros((2, 27), np.int64)
    types[:, 0] = 2
    inputs = [paddle.to_tensor(rng.integers(0, 64, (2, 27))), paddle.ones([2, 27], dtype="int64"),
              paddle.to_tensor(types)]
    with paddle.no_grad():
        dynamic = ExportedHead(model)(*inputs)[0].numpy()
        small_band.clear()
        static = paddle.jit.to_static(ExportedHead(model), full_graph=True,
                                      input_spec=[InputSpec([None, 27], "int64", name) for name in INPUT_NAMES])
        got = static(*inputs)[0].numpy()
    assert small_band, "the traced program did not use the banded form"
    # the dynamic graph runs the C kernels, the program Paddle's ops: equal to fp32 rounding (1.0e-6 seen)
    np.testing.assert_allclose(got, dynamic, atol=2e-6, rtol=0)
