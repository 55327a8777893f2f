"""The banded relative-position term in exported programs (dynamic sequence length; `positions.TRACED_BAND`): chunk
count, padding and window rows computed by the program, equal to the dynamic graph through Paddle Inference and ONNX."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import paddle
import pytest

from model_utils import PARITY_OPTIONS, tiny
from paddlefunnel import MODEL_CLASSES, FunnelConfig
from paddlefunnel.deploy import Predictor, export_model
from paddlefunnel.deploy.export import dynamic_outputs, max_difference, static_model
from paddlefunnel.deploy.runners import PROGRAM_NAME, OnnxRunner
from paddlefunnel.modeling import positions
from paddlefunnel.modeling.inputs import sample_batch

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("paddle2onnx", "onnxruntime"))
TOLERANCE = 1e-5
# Small chunks so that a tiny model's short inputs take every path: one chunk (fewer than BAND_MIN_KEYS keys, or
# Lq <= chunk), several chunks with a padded last one, and the taller chunks from BAND_TALL_FROM keys on.
SMALL_BAND = {"TRACED_BAND": True, "BAND_CHUNK": 4, "BAND_MIN_KEYS": 12, "BAND_TALL_FROM": 24}
LENGTHS = [(1, 7), (2, 9), (2, 23), (2, 24), (1, 37)]


def _set(monkeypatch, values: dict) -> None:
    for name, value in values.items():
        monkeypatch.setattr(positions, name, value)


def _export(tmp_path, head: str = "FunnelBaseModel", onnx: bool = HAS_ONNX, **overrides):
    paddle.seed(0)
    model = MODEL_CLASSES[head](FunnelConfig(**tiny(**overrides)))
    model.eval()
    model.save_pretrained(tmp_path / "model")
    export_model(tmp_path / "model", tmp_path / "exported", onnx=onnx, quiet=True, check_shapes=((2, 16),))
    return model, tmp_path / "exported"


def _assert_exports_match(model, out, head: str, shapes, onnx: bool) -> None:
    predictor = Predictor(out, device="cpu")
    runner = OnnxRunner(out / "model.onnx") if onnx else None
    for seed, (batch, length) in enumerate(shapes):
        length = max(length, predictor.info.min_seq_len)
        inputs = sample_batch(model.config, head, batch, length, seed=seed, labels=False)
        expected = dynamic_outputs(model, inputs)
        got = max_difference(expected, list(predictor.run(**inputs).values()))
        assert got <= TOLERANCE, ("paddle inference", batch, length, got)
        if runner is not None:
            got = max_difference(expected, runner.run(inputs))
            assert got <= TOLERANCE, ("onnx", batch, length, got)


@pytest.mark.parametrize("head, option", [("FunnelBaseModel", "default"), ("FunnelBaseModel", "no_separate_cls"),
                                          ("FunnelBaseModel", "no_truncate_seq"), ("FunnelModel", "default")])
def test_exported_band_matches_dynamic_graph(tmp_path, monkeypatch, head, option):
    """Lengths that are and are not multiples of the chunk, below and above the taller chunks' threshold, pooled
    blocks (pooled queries against the previous block's keys: shift 2) included."""
    _set(monkeypatch, SMALL_BAND)
    model, out = _export(tmp_path, head, **PARITY_OPTIONS[option])
    _assert_exports_match(model, out, head, LENGTHS, HAS_ONNX)


def test_exported_band_with_shipped_chunks_matches_dynamic_graph(tmp_path, monkeypatch):
    """The shipped chunk heights: one chunk below 256 keys or 64 queries, 64-row chunks, 128-row chunks from 1024
    keys on."""
    monkeypatch.setattr(positions, "TRACED_BAND", True)
    model, out = _export(tmp_path, block_sizes=[1, 1])
    _assert_exports_match(model, out, "FunnelBaseModel", [(2, 40), (2, 130), (1, 300), (1, 1030)], HAS_ONNX)


def _index_selects(tmp_path, model, banded: bool) -> int:
    path = tmp_path / ("banded" if banded else "full") / PROGRAM_NAME
    with positions.traced_band(banded), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensor do not have", category=UserWarning)
        paddle.jit.save(static_model(model), str(path))
    return path.with_suffix(".json").read_text().count('"1.index_select"')


def test_exported_program_contains_the_band(tmp_path):
    """One window gather per attention layer on top of the full form's table lookups (one per table)."""
    config = FunnelConfig(**tiny())
    model = MODEL_CLASSES["FunnelBaseModel"](config)
    model.eval()
    layers = sum(config.block_sizes)
    assert _index_selects(tmp_path, model, banded=True) - _index_selects(tmp_path, model, banded=False) == layers


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (paddle2onnx, onnxruntime) is not installed")
def test_default_export_bands_the_onnx_file_and_not_the_paddle_program(tmp_path, monkeypatch):
    """`export` as shipped: the ONNX file traced with the band (one window Gather per attention layer more than
    the full form), the Paddle program without; both exact at lengths that use several chunks."""
    import onnx

    from paddlefunnel.deploy.export import export_onnx

    _set(monkeypatch, {key: value for key, value in SMALL_BAND.items() if key != "TRACED_BAND"})
    model, out = _export(tmp_path, block_sizes=[1, 1])
    full = tmp_path / "full"
    full.mkdir()
    export_onnx(model, full, rank=2, banded=False)
    gathers = lambda path: sum(n.op_type == "Gather" for n in onnx.load(str(path)).graph.node)  # noqa: E731
    assert gathers(out / "model.onnx") - gathers(full / "model.onnx") == sum(model.config.block_sizes)
    assert _index_selects(tmp_path, model, banded=False) == (out / f"{PROGRAM_NAME}.json").read_text().count(
        '"1.index_select"')
    _assert_exports_match(model, out, "FunnelBaseModel", [(2, 23), (1, 37)], onnx=True)


@pytest.mark.parametrize("q_len, context_len, shift, chunk", [(10, 20, 1, 4), (9, 17, 2, 4), (8, 8, 1, 8),
                                                              (3, 5, 2, 3), (64, 64, 1, 64), (65, 130, 2, 64)])
def test_program_rows_equal_the_numpy_rows(q_len, context_len, shift, chunk):
    """`traced_band_rows` (paddle ops on length tensors) reads the rows `band_rows` (numpy, known lengths) reads."""
    expected = positions.band_rows(q_len, shift * q_len + context_len, context_len, shift, chunk)
    length = lambda value: paddle.to_tensor([value], dtype="int32")  # noqa: E731
    got = positions.traced_band_rows(length(q_len), length(context_len), shift, length(chunk)).numpy()
    np.testing.assert_array_equal(got, expected)


@paddle.jit.not_to_static
def _traced_term(q, r, shift: int):
    q_len = paddle.shape(q)[2:3].astype("int32")
    context_len = paddle.shape(r)[2:3].astype("int32") - q_len * paddle.full([1], shift, "int32")
    return positions.traced_banded_relative_scores(q, r, context_len, shift)


class _Term(paddle.nn.Layer):
    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, q, r):
        return _traced_term(q, r, self.shift)


@pytest.mark.filterwarnings("ignore:Tensor do not have")  # Paddle's note on static values; harmless here
@pytest.mark.parametrize("shift", [1, 2])
def test_traced_term_equals_full_form_at_any_length(monkeypatch, shift):
    """One program (lengths unknown while tracing) against the full form at lengths below and above every
    threshold, multiples of the chunk and not."""
    _set(monkeypatch, SMALL_BAND)
    spec = [paddle.static.InputSpec([None, 3, None, 5], "float32"), paddle.static.InputSpec([1, 3, None, 5], "float32")]
    program = paddle.jit.to_static(_Term(shift), input_spec=spec, full_graph=True)
    rng = np.random.default_rng(shift)
    for q_len, context_len in [(3, 5), (5, 11), (6, 12), (8, 16), (9, 17), (12, 23), (13, 24), (30, 30)]:
        q = paddle.to_tensor(rng.standard_normal((2, 3, q_len, 5)).astype("float32"))
        r = paddle.to_tensor(rng.standard_normal((1, 3, shift * q_len + context_len, 5)).astype("float32"))
        expected = positions.full_relative_scores(q, r, context_len, shift).numpy()
        np.testing.assert_allclose(program(q, r).numpy(), expected, atol=1e-5, rtol=1e-5)
