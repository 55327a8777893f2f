"""Export a trained model for deployment: a static Paddle program (`paddle.jit.save`), optionally ONNX.

An export directory holds `model.json` + `model.pdiparams` (PIR program with dynamic batch and sequence
dimensions), the model's `config.json`, its tokenizer and task settings (copied when present), `export.json`
(what the program takes and returns, and the shortest input it supports), with `onnx=True` `model.onnx`, and
with `quantize="int8"` both `model.onnx` and `model.int8.onnx`.
Every export is checked before it is kept: the program (run by Paddle Inference, as `Predictor` runs it) and
the ONNX file (run by onnxruntime) must reproduce the dynamic-graph outputs on the parity tests' sample batch.

int8 (`quantize="int8"`) is ONNX Runtime dynamic quantization of the ONNX file: int8 weights (per tensor, symmetric)
for every MatMul whose second input is a weight, activations quantized per batch at run time, served by
onnxruntime's VNNI int8 kernels. Why this one (measured in benchmarks/RESULTS.md, section "int8"):
- paddle2onnx writes every weight as a Constant node behind an Identity, where the quantizer sees no weight at
  all; they are turned into initializers first (`weights_as_initializers`), after which all 74 weight MatMuls
  are quantized.
- Weights only: also quantizing the attention products (activation x activation) tripled the error and was not
  faster; per-channel weights were slower with no consistent accuracy gain; reduce_range (7-bit weights, for CPUs
  without VNNI, where 8-bit products may saturate) doubled the error and was not reliably faster on a VNNI CPU.
- Speed (small-base, batch 8, 2 threads): 3.17x (seq 128) and 2.53x (seq 512) the fp32 reference (transformers),
  2.46x / 2.05x our Paddle Inference fp32, with the ONNX file's one-node GELU and banded position term (below;
  2.65x / 2.33x before them); the attention products stay fp32, which is why long inputs gain less. Dev-set
  accuracy / F1 of the demo models: unchanged.
- Paddle Inference's oneDNN int8 (`Config.enable_onednn_int8`) needs a calibrated program: Paddle 3.3.1's static
  PTQ (`paddle.static.quantization.PostTrainingQuantization`) reads legacy ProgramDesc programs only, and this model
  cannot be traced into one (with FLAGS_enable_pir_api=0 to_static fails on the dynamic-length shape lists), so
  that candidate never produced a program to time; the PIR route (dynamic-graph `paddle.quantization.PTQ`, then a
  PIR program with quantize/dequantize ops for oneDNN) was not tried (see RESULTS.md, section "int8").
The int8 file is checked like the others, against a looser bound (`INT8_TOLERANCE`): it is a guard against a broken
quantization, not an accuracy claim; accuracy is measured on dev sets (RESULTS.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.static import InputSpec

from ..config import FunnelConfig
from ..errors import ExportError, InputError, MissingDependencyError, MissingFileError
from ..io_utils import atomic_directory, atomic_write_text, check_output_dir, read_json_object
from ..modeling import positions
from ..modeling.activations import ACTIVATIONS
from ..modeling.auto import load_model
from ..modeling.inputs import sample_batch
from ..modeling.pooling import min_length_for_full_pooling
from ..parity import FORWARD_TOLERANCE, forward_difference
from ..registry import ARCHITECTURES, CONFIG_FILE, EXPORT_FILE, SIDECAR_FILES
from ..version import __version__
from .runners import PROGRAM_NAME, OnnxRunner, PaddleInferenceRunner

logger = logging.getLogger("paddlefunnel")

EXPORT_FORMAT = "paddlefunnel-export"
EXPORT_VERSION = 1
ONNX_FILE = "model.onnx"
ONNX_OPSET = 17
INT8_ONNX_FILE = "model.int8.onnx"
QUANTIZATIONS = {"int8": INT8_ONNX_FILE}  # --quantize value -> the file it writes
# int8 vs the dynamic graph (parity.forward_difference: abs difference / max(1, max |reference|)). Measured:
# 2.6e-2 on small-base with random weights, 1.0e-2 / 1.7e-2 on the trained demo GLUE / SQuAD models, 1e-2 on tiny
# test models; a broken quantization (wrong scales, swapped weights) is far above.
INT8_TOLERANCE = 0.15
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
CHECK_SHAPES = ((1, 16), (3, 37))  # (batch, sequence length) pairs checked at export time

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ExportInfo:
    """The content of `export.json`, and (from `export_model`) the shapes the export was checked at."""

    architecture: str
    outputs: tuple[str, ...]
    min_seq_len: int
    input_rank: int  # 2: [batch, seq]; 3: [batch, choices, seq] (multiple choice)
    onnx: str | None = None
    max_differences: dict[str, float] | None = None
    quantized: dict[str, str] | None = None  # precision -> file (e.g. {"int8": "model.int8.onnx"})
    # Input shapes of the export-time checks; not part of export.json (empty when read from it).
    checked_shapes: tuple[tuple[int, ...], ...] = field(default=(), compare=False)

    def to_json(self) -> str:
        payload = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "architecture": self.architecture,
                   "inputs": list(INPUT_NAMES), "input_rank": self.input_rank, "outputs": list(self.outputs),
                   "min_seq_len": self.min_seq_len, "onnx": self.onnx, "max_differences": self.max_differences,
                   "quantized": self.quantized, "paddle": paddle.__version__, "paddlefunnel": __version__}
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def read(cls, directory: str | os.PathLike) -> ExportInfo:
        path = Path(directory) / EXPORT_FILE
        if not path.is_file():
            hint = ""
            if (Path(directory) / CONFIG_FILE).is_file():
                hint = (f"; {directory} is a model directory: export it first with "
                        f"`paddlefunnel export {directory} OUT_DIR`")
            raise MissingFileError(f"{path}: not found, so {directory} is not a paddlefunnel export{hint}")
        data = read_json_object(path, "export description")
        if data.get("format") != EXPORT_FORMAT:
            raise InputError(f"{path}: expected a JSON object with \"format\": \"{EXPORT_FORMAT}\"")
        if data.get("version") != EXPORT_VERSION:
            raise InputError(f"{path}: export format version {data.get('version')!r}; this paddlefunnel reads "
                             f"version {EXPORT_VERSION} (re-export the model)")
        try:
            return cls(architecture=data["architecture"], outputs=tuple(data["outputs"]),
                       min_seq_len=int(data["min_seq_len"]), input_rank=int(data["input_rank"]),
                       onnx=data.get("onnx"), max_differences=data.get("max_differences"),
                       quantized=data.get("quantized"))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: missing or invalid field ({err})") from None


# ------------------------------------------------------------------------------------------- model side
def min_seq_len(config: FunnelConfig) -> int:
    """Shortest input the exported program supports: long enough for every block to pool.

    The dynamic graph stops pooling on very short inputs; a static program cannot branch on the length, so
    it always pools, and `Predictor` refuses shorter inputs.
    """
    return min_length_for_full_pooling(config.num_blocks, config.separate_cls, config.truncate_seq)


def _head_outputs(model, input_ids, attention_mask, token_type_ids) -> tuple:
    out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                return_dict=True)
    return tuple(out[name] for name in ARCHITECTURES[type(model).__name__].outputs)


@paddle.jit.not_to_static
def _static_head_outputs(model, input_ids, attention_mask, token_type_ids) -> tuple:
    # Traced as plain Python (not rewritten by dy2static): the model's length logic reads -1 for dynamic
    # dimensions and takes its static-graph branches (see modeling/ops.py).
    return _head_outputs(model, input_ids, attention_mask, token_type_ids)


class ExportedHead(paddle.nn.Layer):
    """input_ids, attention_mask, token_type_ids -> the head's main outputs (registry: Architecture.outputs)."""

    def __init__(self, body: paddle.nn.Layer) -> None:
        super().__init__()
        self.body = body

    def forward(self, input_ids, attention_mask, token_type_ids):
        return _static_head_outputs(self.body, input_ids, attention_mask, token_type_ids)


def static_model(model: paddle.nn.Layer, rank: int = 2) -> paddle.nn.Layer:
    """`model` as the exported program computes it: a to_static layer taking (input_ids, attention_mask,
    token_type_ids) of dynamic batch and sequence dimensions (rank 3: multiple choice) and returning the head's
    main outputs."""
    input_spec = [InputSpec([None] * rank, "int64", name) for name in INPUT_NAMES]
    return paddle.jit.to_static(ExportedHead(model), input_spec=input_spec, full_graph=True)


def _save_program(model: paddle.nn.Layer, path: Path, rank: int) -> None:
    with warnings.catch_warnings():
        # Paddle notes that static values have no `place` / `contiguous`; both are harmless here.
        warnings.filterwarnings("ignore", message="Tensor do not have", category=UserWarning)
        paddle.jit.save(static_model(model, rank), str(path))


def dynamic_outputs(model: paddle.nn.Layer, inputs: Arrays) -> list[np.ndarray]:
    """The main outputs of the dynamic-graph `model` (what the exported program must reproduce)."""
    with paddle.no_grad():
        outs = _head_outputs(model, *(paddle.to_tensor(inputs[name]) for name in INPUT_NAMES))
    return [o.numpy() for o in outs]


def max_difference(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    """The largest `parity.forward_difference` over all outputs (abs difference / max(1, max |reference|))."""
    worst = 0.0
    for ref, out in zip(reference, got):
        if ref.shape != out.shape:
            raise ExportError(f"output shape {out.shape}, expected {ref.shape}")
        worst = max(worst, forward_difference(ref, out)[0])
    return worst


# ------------------------------------------------------------------------------------------- export
def export_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike, onnx: bool = False,
                 overwrite: bool = False, check_shapes: Sequence[tuple[int, int]] = CHECK_SHAPES,
                 quiet: bool = False, quantize: str | None = None) -> ExportInfo:
    """Export the model in `model_dir` to `out_dir` (see the module docstring); returns what `export.json` says
    plus the shapes checked. Unless `quiet`, `export_report`'s lines are logged (INFO, "paddlefunnel" logger).
    `quantize="int8"` also writes the ONNX file (as `onnx=True`) and its int8 version.

    Raises ExportError when the exported program (or ONNX file) does not reproduce the model within
    parity.FORWARD_TOLERANCE at `check_shapes` (lengths raised to `min_seq_len`; the int8 file within
    INT8_TOLERANCE); nothing is left in `out_dir`.
    """
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise InputError(f"quantize={quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
        require_quantization()
        onnx = True
    if onnx:
        require_onnx()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_output_dir(out_dir, what="export directory", inputs=(model_dir,), overwrite=overwrite)
    model = load_model(model_dir)
    with atomic_directory(out_dir, "export directory") as tmp:
        info = _write_export(model, model_dir, tmp, onnx, check_shapes, quantize)
    if not quiet:
        for line in export_report(info, out_dir):
            logger.info(line)
    return info


def _write_export(model: paddle.nn.Layer, model_dir: Path, target: Path, onnx: bool,
                  check_shapes: Sequence[tuple[int, int]], quantize: str | None = None) -> ExportInfo:
    """Write the program (and ONNX file), config, side files and export.json to `target`, checking each output."""
    architecture = type(model).__name__
    rank = ARCHITECTURES[architecture].input_rank
    minimum = min_seq_len(model.config)
    _save_program(model, target / PROGRAM_NAME, rank)
    model.config.save_pretrained(target)
    _copy_sidecars(model_dir, target)
    checks = [sample_batch(model.config, architecture, batch, max(length, minimum), seed=i, labels=False)
              for i, (batch, length) in enumerate(check_shapes)]
    expected = [dynamic_outputs(model, inputs) for inputs in checks]
    differences = {"paddle_inference": _check(PaddleInferenceRunner(target).run, checks, expected)}
    if onnx:
        export_onnx(model, target, rank)
        differences["onnx"] = _check(OnnxRunner(target / ONNX_FILE).run, checks, expected)
    quantized = None
    if quantize is not None:
        quantize_onnx_int8(target / ONNX_FILE, target / QUANTIZATIONS[quantize])
        differences[f"onnx_{quantize}"] = _check(OnnxRunner(target / QUANTIZATIONS[quantize]).run, checks, expected,
                                                 INT8_TOLERANCE)
        quantized = {quantize: QUANTIZATIONS[quantize]}
    info = ExportInfo(architecture, ARCHITECTURES[architecture].outputs, minimum, rank, ONNX_FILE if onnx else None,
                      differences, quantized, checked_shapes=tuple(tuple(c["input_ids"].shape) for c in checks))
    atomic_write_text(target / EXPORT_FILE, info.to_json())
    return info


def export_report(info: ExportInfo, out_dir: str | os.PathLike) -> list[str]:
    """What `paddlefunnel export` prints about a finished export: the checks passed and the files written."""
    lines = [f"exported {info.architecture}: Paddle Inference reproduces the model (max difference "
             f"{info.max_differences['paddle_inference']:.1e} at shapes {list(info.checked_shapes)})"]
    if info.onnx:
        lines.append(f"ONNX: onnxruntime reproduces the model (max difference {info.max_differences['onnx']:.1e})")
    for precision, name in (info.quantized or {}).items():
        lines.append(f"{precision}: {name} (ONNX Runtime dynamic quantization) differs from the model by at most "
                     f"{info.max_differences[f'onnx_{precision}']:.1e} (bound {INT8_TOLERANCE})")
    lines.append(f"wrote {out_dir}: {', '.join(sorted(p.name for p in Path(out_dir).iterdir()))}")
    return lines


def _copy_sidecars(model_dir: Path, target: Path) -> None:
    for name in SIDECAR_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, target / name)


def _check(run: Callable[[Arrays], list[np.ndarray]], checks: list[Arrays],
           expected: list[list[np.ndarray]], tolerance: float = FORWARD_TOLERANCE) -> float:
    """The largest difference of `run` from the dynamic graph over `checks`; ExportError above `tolerance`."""
    worst = 0.0
    for inputs, reference in zip(checks, expected):
        difference = max_difference(reference, run(inputs))
        if not difference <= tolerance:
            raise ExportError(f"exported outputs differ from the dynamic graph by {difference:.2e} "
                              f"(> {tolerance:.0e}) on inputs of shape {list(inputs['input_ids'].shape)}")
        worst = max(worst, difference)
    return worst


# ------------------------------------------------------------------------------------------- ONNX
def require_onnx() -> None:
    """MissingDependencyError unless the `onnx` extra (paddle2onnx, onnxruntime) is installed."""
    try:
        import onnxruntime  # noqa: F401  (optional: the `onnx` extra)
        import paddle2onnx  # noqa: F401
    except ImportError:
        raise MissingDependencyError("ONNX export needs paddle2onnx and onnxruntime: "
                                     "pip install 'paddlefunnel[onnx]'") from None


# GELU in ONNX. paddle2onnx 2.1 writes gelu(approximate=True) as the exact (erf) GELU, silently changing the model
# (max difference 4.6e-4 measured). The ONNX program is therefore traced with a stand-in activation that converts
# to a single node of an op the model uses nowhere (Softsign), and each of those nodes then becomes ONNX's own tanh
# GELU (`Gelu`, approximate="tanh", opset 20; the file is converted to that opset first). Why not the formula in
# basic ops (the earlier way): about ten passes over the [B, L, 4 d] activation instead of one, measured in
# onnxruntime (one thread, 8 x 512 x 3072): 40 ms vs 9 ms per activation, about 6% of the whole int8 program of
# small-base at 8 x 512; outputs within 1.5e-6 of the written-out formula.
GELU_STAND_IN_OP = "Softsign"
GELU_OPSET = 20
# The ONNX file computes the relative-position term banded (`positions.traced_band`), the Paddle program in full
# form (`positions.TRACED_BAND`). Measured with onnxruntime, small-base FunnelForSequenceClassification, batch 8,
# one thread, median of 5-7 runs alternating in one process (the other core busy, so a few percent is noise), band
# vs full form: int8 1.07x at seq 512 and 0.98x at 128, fp32 1.06x / 0.98x; the Paddle program lost more at 128
# (0.91x, see `positions.TRACED_BAND`). Long inputs are where int8 needed the time (2.33x the reference at 512).
ONNX_BAND = True


@contextlib.contextmanager
def _onnx_gelu_stand_in(model: paddle.nn.Layer) -> Iterator[None]:
    """While tracing for ONNX, every tanh-GELU activation of `model` is `F.softsign` (see GELU_STAND_IN_OP)."""
    tanh_gelu = ACTIVATIONS["gelu_new"]
    swapped = []
    for layer in model.sublayers(include_self=True):
        for name, value in list(vars(layer).items()):
            if value is tanh_gelu:
                swapped.append((layer, name))
                setattr(layer, name, F.softsign)
    try:
        yield
    finally:
        for layer, name in swapped:
            setattr(layer, name, tanh_gelu)


def use_onnx_gelu(path: Path) -> int:
    """Turn the stand-in nodes of the ONNX file at `path` into `Gelu(approximate="tanh")` (raising the file to
    GELU_OPSET), in place; returns how many. A file without stand-ins is left as it is."""
    import onnx  # optional: the `onnx` extra
    from onnx import version_converter

    model = onnx.load(str(path))
    if not any(node.op_type == GELU_STAND_IN_OP for node in model.graph.node):
        return 0
    model = version_converter.convert_version(model, GELU_OPSET)
    replaced = 0
    for node in model.graph.node:
        if node.op_type == GELU_STAND_IN_OP and node.domain in ("", "ai.onnx"):
            node.op_type = "Gelu"
            node.attribute.append(onnx.helper.make_attribute("approximate", "tanh"))
            replaced += 1
    onnx.save(model, str(path))
    return replaced


def export_onnx(model: paddle.nn.Layer, directory: str | os.PathLike, rank: int, banded: bool = ONNX_BAND) -> Path:
    """`model.onnx` in `directory`, converted by paddle2onnx (the `onnx` extra) from a program traced for it
    (with the banded position term unless `banded` is False: see ONNX_BAND)."""
    require_onnx()
    target = Path(directory) / ONNX_FILE
    with tempfile.TemporaryDirectory() as tmp, _onnx_gelu_stand_in(model), positions.traced_band(banded):
        _save_program(model, Path(tmp) / PROGRAM_NAME, rank)
        _paddle2onnx(Path(tmp) / f"{PROGRAM_NAME}.json", Path(tmp) / f"{PROGRAM_NAME}.pdiparams", target)
    use_onnx_gelu(target)
    return target


def _paddle2onnx(program: Path, params: Path, target: Path) -> None:
    """Run paddle2onnx in a subprocess: it aborts the whole process on an unsupported operator."""
    script = ("import sys, paddle2onnx; paddle2onnx.export(sys.argv[1], sys.argv[2], save_file=sys.argv[3], "
              f"opset_version={ONNX_OPSET}, optimize_tool='None', verbose=False)")
    done = subprocess.run([sys.executable, "-c", script, str(program), str(params), str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not target.is_file():
        log = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "Paddle2ONNX" in line)
        raise ExportError(f"paddle2onnx could not convert the exported program (exit status {done.returncode}):"
                          f"\n{log[-2000:]}")


# ------------------------------------------------------------------------------------------- int8
def require_quantization() -> None:
    """MissingDependencyError unless ONNX Runtime's quantization tools (and the onnx extra) can be imported."""
    require_onnx()
    try:
        import onnxruntime.quantization  # noqa: F401  (optional: needs the onnx and ml_dtypes packages)
    except ImportError as err:
        raise MissingDependencyError(f"int8 export needs onnxruntime's quantization tools ({err}): "
                                     "pip install 'paddlefunnel[onnx]' onnx ml_dtypes") from None


def weights_as_initializers(model) -> int:
    """Turn `model`'s (an onnx.ModelProto) Constant nodes into initializers and drop the Identity nodes that only
    forward one, in place; returns how many weights moved.

    paddle2onnx writes each weight as Constant -> Identity -> MatMul. ONNX Runtime's quantizer quantizes a
    MatMul only when its weight is an initializer, so without this it finds nothing to quantize.
    """
    graph = model.graph
    graph_outputs = {output.name for output in graph.output}
    initializers = {tensor.name for tensor in graph.initializer}
    kept, renamed, moved = [], {}, 0
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            tensor = graph.initializer.add()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            initializers.add(tensor.name)
            moved += 1
        elif (node.op_type == "Identity" and renamed.get(node.input[0], node.input[0]) in initializers
              and node.output[0] not in graph_outputs):
            renamed[node.output[0]] = renamed.get(node.input[0], node.input[0])  # chains resolve to the weight
        else:
            kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
    del graph.node[:]
    graph.node.extend(kept)
    return moved


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs advice through the root logger ("consider pre-processing"); not ours to show."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx_int8(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """`target`: `source` (an fp32 ONNX file from paddle2onnx) with int8 MatMul weights (see the module docstring)."""
    require_quantization()
    from onnxruntime.quantization import QuantType, quantize_dynamic  # optional: the `onnx` extra
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    model = load_model_with_shape_infer(Path(source))
    weights_as_initializers(model)
    with _quiet_root_logger():
        quantize_dynamic(model, Path(target), op_types_to_quantize=["MatMul"], per_channel=False, reduce_range=False,
                         weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    return Path(target)
