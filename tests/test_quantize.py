"""int8 export (ONNX Runtime dynamic quantization) and the Predictor's backend choice, on tiny models."""

from __future__ import annotations

import builtins
import importlib.util
import json

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import MODEL_CLASSES, FunnelConfig
from paddlefunnel.cli import main as cli_main
from paddlefunnel.deploy import ExportInfo, Predictor, export_model
from paddlefunnel.deploy.export import INT8_ONNX_FILE, INT8_TOLERANCE, dynamic_outputs, max_difference
from paddlefunnel.errors import InputError, MissingDependencyError
from paddlefunnel.modeling.inputs import sample_batch
from paddlefunnel.registry import ARCHITECTURES, EXPORT_FILE

HAS_QUANTIZATION = all(importlib.util.find_spec(m) is not None
                       for m in ("paddle2onnx", "onnxruntime", "onnx", "ml_dtypes"))
needs_quantization = pytest.mark.skipif(not HAS_QUANTIZATION, reason="the onnx extra (paddle2onnx, onnxruntime, "
                                                                     "onnx, ml_dtypes) is not installed")
CLASSIFIER = "FunnelForSequenceClassification"
CHECK = ((2, 16),)


def build(tmp_path, head: str = CLASSIFIER, **overrides):
    paddle.seed(0)
    config = FunnelConfig(**tiny(num_labels=3 if head == CLASSIFIER else 2, d_model=32, d_head=16, d_inner=64,
                                 **overrides))
    model = MODEL_CLASSES[head](config)
    model.eval()
    directory = tmp_path / head
    model.save_pretrained(directory)
    return directory, model


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("int8")
    directory, model = build(tmp_path)
    out = tmp_path / "exported"
    info = export_model(directory, out, quantize="int8", quiet=True, check_shapes=CHECK)
    return model, out, info


def batch(model, size: int = 8, length: int = 24, seed: int = 3):
    return sample_batch(model.config, CLASSIFIER, size, length, seed=seed, labels=False)


@needs_quantization
def test_int8_export_writes_what_export_json_says(int8_export):
    model, out, info = int8_export
    written = {p.name for p in out.iterdir()}
    assert {"model.json", "model.pdiparams", "model.onnx", INT8_ONNX_FILE, EXPORT_FILE} <= written
    assert ExportInfo.read(out) == info
    assert info.onnx == "model.onnx" and info.quantized == {"int8": INT8_ONNX_FILE}
    saved = json.loads((out / EXPORT_FILE).read_text())
    assert saved["quantized"] == {"int8": INT8_ONNX_FILE}
    assert 0 < saved["max_differences"]["onnx_int8"] <= INT8_TOLERANCE  # > 0: really quantized, not a copy


@needs_quantization
def test_int8_matmul_weights_are_int8(int8_export):
    import onnx

    model, out, _ = int8_export
    graph = onnx.load(str(out / INT8_ONNX_FILE)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    integer_products = [node for node in graph.node if node.op_type == "MatMulInteger"]
    weights = [initializers[node.input[1]] for node in integer_products if node.input[1] in initializers]
    # one int8 weight per Linear layer (attention projections, feed-forward, head)
    linears = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.Linear)]
    assert len(weights) == len(linears) > 0
    assert all(w.data_type == onnx.TensorProto.INT8 for w in weights)
    float_weight_products = [node for node in graph.node if node.op_type == "MatMul" and node.input[1] in initializers]
    assert float_weight_products == []  # no weight product left in fp32


@needs_quantization
def test_int8_outputs_close_to_fp32(int8_export):
    model, out, _ = int8_export
    inputs = batch(model, size=16)
    fp32 = dynamic_outputs(model, inputs)[0]
    int8 = Predictor(out, device="cpu", precision="int8").run(**inputs)["logits"]
    assert Predictor(out, device="cpu", precision="int8").backend == "onnxruntime"  # int8's default backend
    difference = max_difference([fp32], [int8])
    assert 0 < difference <= INT8_TOLERANCE
    assert np.mean(fp32.argmax(-1) == int8.argmax(-1)) >= 0.75


@needs_quantization
def test_backends_agree_on_fp32(int8_export):
    model, out, _ = int8_export
    inputs = batch(model, size=3, length=19)
    paddle_out = Predictor(out, device="cpu", backend="paddle").run(**inputs)["logits"]
    onnx_out = Predictor(out, device="cpu", backend="onnxruntime", batch_size=2).run(**inputs)["logits"]
    np.testing.assert_allclose(onnx_out, paddle_out, rtol=0, atol=1e-5)
    np.testing.assert_allclose(paddle_out, dynamic_outputs(model, inputs)[0], rtol=0, atol=1e-5)


@needs_quantization
@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "int8", "backend": "paddle"}, "onnxruntime backend, not Paddle Inference"),
    ({"precision": "bf16", "backend": "onnxruntime"}, "Paddle Inference setting"),
    ({"precision": "int4"}, "expected one of fp32, bf16, int8"),
    ({"backend": "tensorrt"}, "expected one of paddle, onnxruntime"),
    ({"backend": "onnxruntime", "device": "gpu"}, "runs on CPU"),
])
def test_unservable_backend_or_precision_is_an_input_error(int8_export, kwargs, message):
    _, out, _ = int8_export
    with pytest.raises(InputError, match=message):
        Predictor(out, **kwargs)


def test_export_without_onnx_files_refuses_onnxruntime_clearly(tmp_path):
    directory, _ = build(tmp_path)
    out = tmp_path / "plain"
    export_model(directory, out, quiet=True, check_shapes=CHECK)
    with pytest.raises(InputError, match="--quantize int8"):
        Predictor(out, precision="int8")
    with pytest.raises(InputError, match="--onnx"):
        Predictor(out, backend="onnxruntime")


@pytest.mark.parametrize("missing", ["onnxruntime.quantization", "paddle2onnx"])
def test_int8_export_explains_missing_dependencies(tmp_path, monkeypatch, missing):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == missing:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match="pip install"):
        export_model(tmp_path / "model", tmp_path / "out", quantize="int8", quiet=True)
    assert not (tmp_path / "out").exists()  # refused before any work


def test_unknown_quantization_is_refused(tmp_path):
    with pytest.raises(InputError, match="quantize='int4'"):
        export_model(tmp_path / "model", tmp_path / "out", quantize="int4", quiet=True)


# Question answering (two outputs) and multiple choice (rank-3 inputs) stand for the rest in the quick run; each
# export takes seconds (a paddle2onnx subprocess), so the other heads run with the slow tests.
QUICK_HEADS = ("FunnelForMultipleChoice", "FunnelForQuestionAnswering")
OTHER_HEADS = [pytest.param(head, marks=[] if head in QUICK_HEADS else [pytest.mark.slow])
               for head in sorted(set(ARCHITECTURES) - {CLASSIFIER})]


@needs_quantization
@pytest.mark.parametrize("head", OTHER_HEADS)
def test_every_head_exports_int8(tmp_path, head):
    directory, _ = build(tmp_path, head, block_sizes=[1, 1], num_decoder_layers=1)
    info = export_model(directory, tmp_path / "out", quantize="int8", quiet=True, check_shapes=((1, 8),))
    assert info.quantized == {"int8": INT8_ONNX_FILE}
    assert 0 < info.max_differences["onnx_int8"] <= INT8_TOLERANCE


@needs_quantization
def test_cli_export_quantize_and_predict_int8(tmp_path, capsys, monkeypatch):
    from paddlefunnel.cli import predict as predict_cli

    directory, _ = build(tmp_path, block_sizes=[1, 1])
    out = tmp_path / "cli_export"
    assert cli_main(["export", str(directory), str(out), "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out
    assert "int8: model.int8.onnx" in printed and (out / INT8_ONNX_FILE).is_file()
    made = []

    def spy(*args, **kwargs):
        made.append(Predictor(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(predict_cli, "Predictor", spy)
    # The tiny model has no tokenizer: the Predictor is built, then the text is refused as a user error.
    code = cli_main(["predict", "--model", str(out), "--backend", "onnxruntime", "--precision", "int8", "--text", "a"])
    assert code == 2 and "tokenizer" in capsys.readouterr().err
    assert made[0].backend == "onnxruntime" and made[0].precision == "int8"
