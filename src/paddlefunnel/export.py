"""Export a trained model for deployment: a static Paddle program (`paddle.jit.save`), optionally ONNX.

An export directory holds `model.json` + `model.pdiparams` (PIR program with dynamic batch and sequence
dimensions), the model's `config.json`, its tokenizer and task settings (copied when present), `export.json`
(what the program takes and returns, and the shortest input it supports), and with `onnx=True` `model.onnx`.
Every export is checked before it is kept: the program (run by Paddle Inference, as `Predictor` runs it) and
the ONNX file (run by onnxruntime) must reproduce the dynamic-graph outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CONFIG_NAME, FunnelConfig
from .io_utils import atomic_directory, atomic_write_text, read_json_object
from .runtime import restore_cpu_threads

EXPORT_FORMAT = "paddlefunnel-export"
EXPORT_VERSION = 1
EXPORT_FILE = "export.json"
PROGRAM_NAME = "model"  # model.json + model.pdiparams
ONNX_FILE = "model.onnx"
ONNX_OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Files that travel with the program: tokenizer, and the task settings written by `paddlefunnel train`.
SIDECAR_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "task.json", "squad_settings.json")
# The tensors each architecture's exported program returns, in order.
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "FunnelModel": ("last_hidden_state",),
    "FunnelBaseModel": ("last_hidden_state",),
    "FunnelForPreTraining": ("logits",),
    "FunnelForMaskedLM": ("logits",),
    "FunnelForSequenceClassification": ("logits",),
    "FunnelForMultipleChoice": ("logits",),
    "FunnelForTokenClassification": ("logits",),
    "FunnelForQuestionAnswering": ("start_logits", "end_logits"),
}
TOLERANCE = 1e-5  # max abs difference / max(1, max |dynamic output|), as in the parity tests
CHECK_SHAPES = ((1, 16), (3, 37))  # (batch, sequence length) pairs checked at export time


class ExportError(RuntimeError):
    """An exported program (or ONNX file) does not reproduce the dynamic-graph model."""


@dataclass(frozen=True)
class ExportInfo:
    """The content of `export.json`."""

    architecture: str
    outputs: tuple[str, ...]
    min_seq_len: int
    input_rank: int  # 2: [batch, seq]; 3: [batch, choices, seq] (multiple choice)
    onnx: str | None = None
    max_differences: dict[str, float] | None = None

    def to_json(self) -> str:
        from . import __version__
        import paddle

        payload = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "architecture": self.architecture,
                   "inputs": list(INPUT_NAMES), "input_rank": self.input_rank, "outputs": list(self.outputs),
                   "min_seq_len": self.min_seq_len, "onnx": self.onnx, "max_differences": self.max_differences,
                   "paddle": paddle.__version__, "paddlefunnel": __version__}
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def read(cls, directory: str | os.PathLike) -> "ExportInfo":
        path = Path(directory) / EXPORT_FILE
        if not path.is_file():
            hint = ""
            if (Path(directory) / CONFIG_NAME).is_file():
                hint = (f"; {directory} is a model directory: export it first with "
                        f"`paddlefunnel export {directory} OUT_DIR`")
            raise FileNotFoundError(f"{path}: not found, so {directory} is not a paddlefunnel export{hint}")
        data = read_json_object(path, "export description")
        if data.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{path}: expected a JSON object with \"format\": \"{EXPORT_FORMAT}\"")
        if data.get("version") != EXPORT_VERSION:
            raise ValueError(f"{path}: export format version {data.get('version')!r}; this paddlefunnel reads "
                             f"version {EXPORT_VERSION} (re-export the model)")
        try:
            return cls(architecture=data["architecture"], outputs=tuple(data["outputs"]),
                       min_seq_len=int(data["min_seq_len"]), input_rank=int(data["input_rank"]),
                       onnx=data.get("onnx"), max_differences=data.get("max_differences"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: missing or invalid field ({err})") from None


# ------------------------------------------------------------------------------------------- model side
def min_seq_len(config: FunnelConfig) -> int:
    """Shortest input the exported program supports: long enough for every block to pool.

    The dynamic graph stops pooling on very short inputs; a static program cannot branch on the length, so
    it always pools, and `Predictor` pads shorter inputs up to this length.
    """
    from .modeling.pooling import min_length_for_full_pooling

    return min_length_for_full_pooling(config.num_blocks, config.separate_cls, config.truncate_seq)


def load_model(model_dir: str | os.PathLike):
    """The model saved in `model_dir`, as the class its config names; clear errors for non-model directories."""
    from .weights import model_class_for

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    if not (model_dir / CONFIG_NAME).is_file():
        found = ", ".join(sorted(p.name for p in model_dir.iterdir())[:8]) or "nothing"
        raise FileNotFoundError(f"{model_dir}: not a model directory (expected {CONFIG_NAME} and model weights, "
                                f"found {found})")
    if (model_dir / EXPORT_FILE).is_file():
        raise ValueError(f"{model_dir}: is an export (it has {EXPORT_FILE}), not a model directory; export the "
                         f"model directory it came from")
    config = FunnelConfig.from_pretrained(model_dir)
    model = model_class_for(config).from_pretrained(model_dir)
    model.eval()
    return model


def _head_outputs(model, input_ids, attention_mask, token_type_ids) -> tuple:
    out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                return_dict=True)
    return tuple(out[name] for name in OUTPUT_NAMES[type(model).__name__])


def _static_head_outputs(model, input_ids, attention_mask, token_type_ids) -> tuple:
    # Traced as plain Python (not rewritten by dy2static): the model's length logic reads -1 for dynamic
    # dimensions and takes its static-graph branches (see modeling/ops.py).
    return _head_outputs(model, input_ids, attention_mask, token_type_ids)


def _exportable(model):
    import paddle

    run = paddle.jit.not_to_static(_static_head_outputs)

    class ExportedHead(paddle.nn.Layer):
        """input_ids, attention_mask, token_type_ids -> the head's main outputs (see OUTPUT_NAMES)."""

        def __init__(self, body) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids, attention_mask, token_type_ids):
            return run(self.body, input_ids, attention_mask, token_type_ids)

    return ExportedHead(model)


def _save_program(model, path: Path, rank: int) -> None:
    """to_static + jit.save (dynamic batch and sequence dimensions)."""
    import paddle

    with warnings.catch_warnings():
        # Paddle notes that static values have no `place` / `contiguous`; both are harmless here.
        warnings.filterwarnings("ignore", message="Tensor do not have", category=UserWarning)
        static = paddle.jit.to_static(_exportable(model), input_spec=_input_spec(rank), full_graph=True)
        paddle.jit.save(static, str(path))


def _input_spec(rank: int):
    from paddle.static import InputSpec

    return [InputSpec([None] * rank, "int64", name) for name in INPUT_NAMES]


def sample_inputs(config: FunnelConfig, batch: int, seq_len: int, rank: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """A padded sentence-pair batch (<cls> type 2, segments 0/1, the last row half padding) for checks."""
    rng = np.random.default_rng(seed)
    shape = (batch, 2, seq_len) if rank == 3 else (batch, seq_len)
    ids = rng.integers(min(7, config.vocab_size - 1), config.vocab_size, shape).astype(np.int64)
    mask = np.ones(shape, np.int64)
    types = np.zeros(shape, np.int64)
    types[..., seq_len // 2:] = 1
    types[..., 0] = 2
    if batch > 1:
        mask[-1, ..., max(1, seq_len // 2):] = 0
        ids[mask == 0] = config.pad_token_id or 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def dynamic_outputs(model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import paddle

    with paddle.no_grad():
        outs = _head_outputs(model, *(paddle.to_tensor(inputs[name]) for name in INPUT_NAMES))
    return [o.numpy() for o in outs]


def max_difference(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> float:
    """Max abs difference over all outputs, each divided by max(1, max |reference|)."""
    worst = 0.0
    for ref, out in zip(reference, got):
        if ref.shape != out.shape:
            raise ExportError(f"output shape {out.shape}, expected {ref.shape}")
        scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
        worst = max(worst, float(np.abs(ref.astype(np.float64) - out).max()) / scale if ref.size else 0.0)
    return worst


# ------------------------------------------------------------------------------------------- export
def export_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike, onnx: bool = False,
                 overwrite: bool = False, check_shapes: Sequence[tuple[int, int]] = CHECK_SHAPES,
                 quiet: bool = False) -> ExportInfo:
    """Export the model in `model_dir` to `out_dir` (see the module docstring); returns what `export.json` says.

    Raises ExportError when the exported program (or ONNX file) does not reproduce the model within
    TOLERANCE at `check_shapes`; nothing is left in `out_dir` then.
    """
    if onnx:
        _require_onnx()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    model = load_model(model_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir}: exists and is not empty (use --overwrite to replace it)")
    architecture = type(model).__name__
    rank = 3 if architecture == "FunnelForMultipleChoice" else 2
    minimum = min_seq_len(model.config)
    say = (lambda *a: None) if quiet else print
    with atomic_directory(out_dir) as tmp:
        _save_program(model, tmp / PROGRAM_NAME, rank)
        model.config.save_pretrained(tmp)
        _copy_sidecars(model_dir, tmp)
        checks = [sample_inputs(model.config, b, max(n, minimum), rank, seed=i) for i, (b, n) in enumerate(check_shapes)]
        expected = [dynamic_outputs(model, inputs) for inputs in checks]
        differences = {"paddle_inference": _check(lambda x: run_paddle_inference(tmp, x), checks, expected)}
        say(f"exported {architecture}: Paddle Inference reproduces the model (max difference "
            f"{differences['paddle_inference']:.1e} at shapes {[tuple(c['input_ids'].shape) for c in checks]})")
        onnx_name = None
        if onnx:
            export_onnx(model, tmp, rank)
            differences["onnx"] = _check(lambda x: run_onnx(tmp / ONNX_FILE, x), checks, expected)
            onnx_name = ONNX_FILE
            say(f"ONNX: onnxruntime reproduces the model (max difference {differences['onnx']:.1e})")
        info = ExportInfo(architecture, OUTPUT_NAMES[architecture], minimum, rank, onnx_name, differences)
        atomic_write_text(tmp / EXPORT_FILE, info.to_json())
    say(f"wrote {out_dir}: {', '.join(sorted(p.name for p in out_dir.iterdir()))}")
    return info


def _copy_sidecars(model_dir: Path, target: Path) -> None:
    for name in SIDECAR_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, target / name)


def _check(run, checks: list[dict[str, np.ndarray]], expected: list[list[np.ndarray]]) -> float:
    worst = 0.0
    for inputs, reference in zip(checks, expected):
        difference = max_difference(reference, run(inputs))
        if not difference <= TOLERANCE:
            raise ExportError(f"exported outputs differ from the dynamic graph by {difference:.2e} (> {TOLERANCE:.0e}) "
                              f"on inputs of shape {list(inputs['input_ids'].shape)}")
        worst = max(worst, difference)
    return worst


# --------------------------------------------------------------------------------------- runtimes
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, device: str) -> None:
    """bf16 runs on CPUs whose oneDNN kernels support it (AVX-512; fast with AVX512-BF16 or AMX)."""
    import paddle

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if device != "cpu":
        raise ValueError(f"precision={precision!r} is a CPU (oneDNN) setting; on {device} use fp32")
    if not paddle.base.core.supports_bfloat16():
        raise ValueError("precision='bf16' needs a CPU with AVX-512 (oneDNN's bfloat16 kernels); this one has none: "
                         "use fp32")
    if not paddle.base.core.supports_bfloat16_fast_performance():
        warnings.warn("this CPU has no AVX512-BF16 / AMX instructions: bf16 runs emulated and may be slower than fp32",
                      stacklevel=3)


def inference_config(directory: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                     precision: str = "fp32"):
    """Paddle Inference settings: oneDNN on CPU with every core (bf16 matmuls with precision="bf16"), or GPU 0."""
    from paddle import inference

    check_precision(precision, device)
    directory = Path(directory)
    config = inference.Config(str(directory / f"{PROGRAM_NAME}.json"), str(directory / f"{PROGRAM_NAME}.pdiparams"))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        config.enable_mkldnn()
        if precision == "bf16":
            config.enable_mkldnn_bfloat16()
        config.set_cpu_math_library_num_threads(threads or os.cpu_count() or 1)
    config.disable_glog_info()
    return config


def run_paddle_inference(directory: str | os.PathLike, inputs: dict[str, np.ndarray], predictor=None) -> list[np.ndarray]:
    """Run an exported program once (a fresh CPU predictor unless one is given)."""
    from paddle import inference

    if predictor is None:
        predictor = inference.create_predictor(inference_config(directory))
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(inputs[name], dtype=np.int64))
    predictor.run()
    restore_cpu_threads()  # a predictor run leaves Paddle's dynamic graph on one thread
    return [predictor.get_output_handle(name).copy_to_cpu() for name in predictor.get_output_names()]


def _require_onnx() -> None:
    try:
        import onnxruntime  # noqa: F401
        import paddle2onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs paddle2onnx and onnxruntime: pip install 'paddlefunnel[onnx]'") from None


def _gelu_tanh_spelled_out(x):
    import paddle

    return 0.5 * x * (1.0 + paddle.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


@contextlib.contextmanager
def _onnx_friendly_activations(model) -> Iterator[None]:
    """paddle2onnx 2.1 converts gelu(approximate=True) into the exact (erf) GELU, silently changing the
    model (max difference 4.6e-4 measured); for the ONNX program the tanh GELU is written out in basic ops."""
    from .modeling.activations import ACTIVATIONS

    tanh_gelu = ACTIVATIONS["gelu_new"]
    swapped = []
    for layer in model.sublayers(include_self=True):
        for name, value in list(vars(layer).items()):
            if value is tanh_gelu:
                swapped.append((layer, name))
                setattr(layer, name, _gelu_tanh_spelled_out)
    try:
        yield
    finally:
        for layer, name in swapped:
            setattr(layer, name, tanh_gelu)


def export_onnx(model, directory: str | os.PathLike, rank: int) -> Path:
    """`model.onnx` in `directory`, converted by paddle2onnx (the `onnx` extra) from a program traced for it."""
    import tempfile

    _require_onnx()
    target = Path(directory) / ONNX_FILE
    with tempfile.TemporaryDirectory() as tmp, _onnx_friendly_activations(model):
        _save_program(model, Path(tmp) / PROGRAM_NAME, rank)
        _paddle2onnx(Path(tmp) / f"{PROGRAM_NAME}.json", Path(tmp) / f"{PROGRAM_NAME}.pdiparams", target)
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


def run_onnx(path: str | os.PathLike, inputs: dict[str, np.ndarray], session=None) -> list[np.ndarray]:
    import onnxruntime

    if session is None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: paddle2onnx leaves unused constants it would warn about
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {i.name: np.ascontiguousarray(inputs[i.name], dtype=np.int64) for i in session.get_inputs()}
    return session.run(None, feed)
