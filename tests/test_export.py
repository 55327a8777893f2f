"""Export: the static program (Paddle Inference) and the ONNX file reproduce the dynamic graph for every head."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import MODEL_CLASSES, FunnelConfig
from paddlefunnel.deploy import ExportInfo, Predictor, export_model
from paddlefunnel.deploy.export import dynamic_outputs, max_difference, min_seq_len
from paddlefunnel.deploy.runners import OnnxRunner, PaddleInferenceRunner
from paddlefunnel.errors import ExportError
from paddlefunnel.modeling.inputs import sample_batch
from paddlefunnel.registry import ARCHITECTURES, EXPORT_FILE

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("paddle2onnx", "onnxruntime"))
HEAD_LABELS = {"FunnelForSequenceClassification": 3, "FunnelForTokenClassification": 5}
TOLERANCE = 1e-5


def build(tmp_path, head: str, **overrides):
    """A random tiny model of `head` saved to a directory; returns (directory, the model)."""
    paddle.seed(0)
    config = FunnelConfig(**tiny(num_labels=HEAD_LABELS.get(head, 2), **overrides))
    model = MODEL_CLASSES[head](config)
    model.eval()
    directory = tmp_path / head
    model.save_pretrained(directory)
    return directory, model


def shapes_for(config: FunnelConfig) -> list[tuple[int, int]]:
    """Batch and length combinations: the shortest supported input, odd and even lengths, longer than the
    lengths checked at export time."""
    return [(1, min_seq_len(config)), (2, 13), (3, 24), (2, 41)]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def exported(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    directory, model = build(tmp_path, request.param)
    out = tmp_path / "exported"
    info = export_model(directory, out, onnx=HAS_ONNX, quiet=True, check_shapes=((2, 16),))  # tests check more
    return request.param, model, out, info


def test_export_writes_program_config_and_description(exported):
    head, model, out, info = exported
    assert {"model.json", "model.pdiparams", "config.json", EXPORT_FILE} <= {p.name for p in out.iterdir()}
    assert ExportInfo.read(out) == info
    assert info.architecture == head and info.outputs == ARCHITECTURES[head].outputs
    assert FunnelConfig.from_pretrained(out).architectures == [head]
    assert info.max_differences["paddle_inference"] <= TOLERANCE


def test_paddle_inference_matches_dynamic_graph_at_several_shapes(exported):
    head, model, out, info = exported
    predictor = Predictor(out, device="cpu", batch_size=2)  # batch_size 2: batches of 3 are split and re-joined
    for seed, (batch, length) in enumerate(shapes_for(model.config)):
        inputs = sample_batch(model.config, head, batch, length, seed=seed, labels=False)
        expected = dynamic_outputs(model, inputs)
        got = predictor.run(**inputs)
        assert list(got) == list(ARCHITECTURES[head].outputs)
        difference = max_difference(expected, list(got.values()))
        assert difference <= TOLERANCE, (head, batch, length, difference)


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (paddle2onnx, onnxruntime) is not installed")
def test_onnx_matches_dynamic_graph_at_several_shapes(exported):
    head, model, out, info = exported
    assert info.onnx == "model.onnx" and (out / "model.onnx").is_file()
    runner = OnnxRunner(out / "model.onnx")
    for seed, (batch, length) in enumerate(shapes_for(model.config)):
        inputs = sample_batch(model.config, head, batch, length, seed=seed, labels=False)
        difference = max_difference(dynamic_outputs(model, inputs), runner.run(inputs))
        assert difference <= TOLERANCE, (head, batch, length, difference)


@pytest.mark.parametrize("option, onnx", [
    ({"attention_type": "factorized"}, HAS_ONNX),
    ({"separate_cls": False, "truncate_seq": False}, False),
    ({"pool_q_only": False, "pooling_type": "max", "block_repeats": [1, 2, 1]}, False),
])
def test_configuration_options_export_exactly(tmp_path, option, onnx):
    directory, model = build(tmp_path, "FunnelModel", **option)
    out = tmp_path / "exported"
    export_model(directory, out, onnx=onnx, quiet=True, check_shapes=((2, 16),))
    predictor = Predictor(out, device="cpu")
    for seed, (batch, length) in enumerate(shapes_for(model.config)):
        inputs = sample_batch(model.config, "FunnelModel", batch, length, seed=seed, labels=False)
        expected = dynamic_outputs(model, inputs)
        assert max_difference(expected, list(predictor.run(**inputs).values())) <= TOLERANCE
        if onnx:
            assert max_difference(expected, OnnxRunner(out / "model.onnx").run(inputs)) <= TOLERANCE


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (paddle2onnx, onnxruntime) is not installed")
@pytest.mark.parametrize("activation", ["gelu_new", "relu"])
def test_onnx_tanh_gelu_is_one_standard_node(tmp_path, activation):
    """The tanh GELU reaches the ONNX file as one `Gelu(approximate="tanh")` node per use (opset 20), not as
    paddle2onnx's erf GELU or the formula in basic ops; a model without it keeps the export opset."""
    import onnx

    from paddlefunnel.deploy.export import GELU_OPSET, GELU_STAND_IN_OP, ONNX_OPSET

    directory, model = build(tmp_path, "FunnelModel", hidden_act=activation)
    info = export_model(directory, tmp_path / "exported", onnx=True, quiet=True, check_shapes=((2, 16),))
    graph = onnx.load(str(tmp_path / "exported" / "model.onnx"))
    ops = [node.op_type for node in graph.graph.node]
    opset = {entry.domain: entry.version for entry in graph.opset_import}[""]
    layers = sum(model.config.block_sizes) + model.config.num_decoder_layers
    assert GELU_STAND_IN_OP not in ops and "Erf" not in ops and "Tanh" not in ops
    if activation == "gelu_new":
        gelus = [node for node in graph.graph.node if node.op_type == "Gelu"]
        assert len(gelus) == layers and opset == GELU_OPSET
        assert all(onnx.helper.get_attribute_value(node.attribute[0]) == b"tanh" for node in gelus)
    else:
        assert "Gelu" not in ops and opset == ONNX_OPSET
    assert info.max_differences["onnx"] <= TOLERANCE


def test_tokenizer_and_task_files_travel_with_the_export(tmp_path):
    directory, _ = build(tmp_path, "FunnelForSequenceClassification")
    (directory / "vocab.txt").write_text("<pad>\n<unk>\n<cls>\n<sep>\n<mask>\nhello\n", encoding="utf-8")
    (directory / "task.json").write_text(json.dumps({"max_seq_length": 16, "label_list": ["a", "b", "c"]}))
    export_model(directory, tmp_path / "out", quiet=True)
    assert (tmp_path / "out" / "vocab.txt").read_text() == (directory / "vocab.txt").read_text()
    assert json.loads((tmp_path / "out" / "task.json").read_text())["label_list"] == ["a", "b", "c"]


def test_export_of_a_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"not a model directory \(expected config.json.*notes.txt"):
        export_model(tmp_path / "notes", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        export_model(tmp_path / "missing", tmp_path / "out")


def test_export_refuses_a_non_empty_target_unless_overwrite(tmp_path):
    directory, _ = build(tmp_path, "FunnelBaseModel")
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        export_model(directory, target, quiet=True)
    export_model(directory, target, overwrite=True, quiet=True)
    assert not (target / "keep.txt").exists() and (target / EXPORT_FILE).is_file()


def test_export_that_does_not_reproduce_the_model_is_rejected_and_not_kept(tmp_path, monkeypatch):
    directory, _ = build(tmp_path, "FunnelBaseModel")
    real = PaddleInferenceRunner.run
    monkeypatch.setattr(PaddleInferenceRunner, "run", lambda runner, x: [o + 1e-3 for o in real(runner, x)])
    with pytest.raises(ExportError, match=r"differ from the dynamic graph by [0-9.e-]+ \(> 1e-05\) on inputs of shape"):
        export_model(directory, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_reading_an_export_description_names_the_problem(tmp_path):
    directory, _ = build(tmp_path, "FunnelBaseModel")
    with pytest.raises(FileNotFoundError, match="is a model directory: export it first"):
        ExportInfo.read(directory)
    (tmp_path / EXPORT_FILE).write_text("{broken")
    with pytest.raises(ValueError, match=r"not valid JSON \(line 1, column 2"):
        ExportInfo.read(tmp_path)
    (tmp_path / EXPORT_FILE).write_text(json.dumps({"format": "paddlefunnel-export", "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        ExportInfo.read(tmp_path)


def test_exported_program_refuses_inputs_shorter_than_it_supports(exported):
    head, model, out, info = exported
    predictor = Predictor(out, device="cpu")
    inputs = sample_batch(model.config, head, 1, info.min_seq_len, labels=False)
    too_short = {k: v[..., : info.min_seq_len - 1] for k, v in inputs.items()}
    with pytest.raises(ValueError, match=f"too short.*at least {info.min_seq_len}"):
        predictor.run(**too_short)
    np.testing.assert_array_equal(predictor.run(**inputs)[info.outputs[0]].shape[0], 1)


def test_cli_export(tmp_path, capsys):
    from paddlefunnel.cli import main

    directory, _ = build(tmp_path, "FunnelForQuestionAnswering")
    assert main(["export", str(directory), str(tmp_path / "out")]) == 0
    assert "Paddle Inference reproduces the model" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "out"), str(tmp_path / "again")]) == 2
    assert "is an export (it has export.json), not a model directory" in capsys.readouterr().err
