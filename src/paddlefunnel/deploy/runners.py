"""One runner per backend for an exported program: arrays in, the program's outputs out (as numpy, in order).

`PaddleInferenceRunner` runs `model.json` + `model.pdiparams` with Paddle Inference (oneDNN on CPU, or GPU 0);
both the export check and `Predictor` use it, so what is checked is what is served. `OnnxRunner` runs
`model.onnx` (fp32) or `model.int8.onnx` (int8) with onnxruntime on CPU (the `onnx` extra).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import paddle
from paddle import inference

from ..errors import InputError
from ..runtime import restore_cpu_threads

logger = logging.getLogger("paddlefunnel")

PROGRAM_NAME = "model"  # an export directory's program: model.json + model.pdiparams
PRECISIONS = ("fp32", "bf16")  # Paddle Inference
ONNX_PRECISIONS = ("fp32", "int8")  # onnxruntime
BACKENDS = ("paddle", "onnxruntime")
DEVICES = ("cpu", "gpu")


def default_device() -> str:
    """"gpu" when Paddle is built with CUDA and sees a GPU, else "cpu"."""
    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return "gpu"
    return "cpu"


def check_precision(precision: str, device: str) -> None:
    """bf16 runs on CPUs whose oneDNN kernels support it (AVX-512; fast with AVX512-BF16 or AMX)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if device != "cpu":
        raise InputError(f"precision={precision!r} is a CPU (oneDNN) setting; on {device} use fp32")
    if not paddle.base.core.supports_bfloat16():
        raise InputError("precision='bf16' needs a CPU with AVX-512 (oneDNN's bfloat16 kernels); this one has none: "
                         "use fp32")
    if not paddle.base.core.supports_bfloat16_fast_performance():
        logger.warning("this CPU has no AVX512-BF16 / AMX instructions: bf16 runs emulated and may be slower than "
                       "fp32")


def inference_config(directory: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                     precision: str = "fp32") -> inference.Config:
    """Paddle Inference settings: oneDNN on CPU with every core (bf16 matmuls with precision="bf16"), or GPU 0."""
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


def _int64(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    return np.ascontiguousarray(arrays[name], dtype=np.int64)


class PaddleInferenceRunner:
    """One Paddle Inference predictor over the program in an export directory (see `inference_config`)."""

    def __init__(self, directory: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                 precision: str = "fp32") -> None:
        self._predictor = inference.create_predictor(inference_config(directory, device, threads, precision))

    def run(self, arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The program's outputs for `arrays` (input name -> integer array), in the program's order."""
        predictor = self._predictor
        for name in predictor.get_input_names():
            predictor.get_input_handle(name).copy_from_cpu(_int64(arrays, name))
        predictor.run()
        restore_cpu_threads()  # a predictor run leaves Paddle's dynamic graph on one thread
        return [predictor.get_output_handle(name).copy_to_cpu() for name in predictor.get_output_names()]


class OnnxRunner:
    """One onnxruntime CPU session over an ONNX file (needs the `onnx` extra); `threads`: intra-op threads
    (default: onnxruntime's own choice, every physical core)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime  # optional: the `onnx` extra

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: paddle2onnx leaves unused constants it would warn about
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The model's outputs for `arrays` (input name -> integer array), in the model's order."""
        return self._session.run(None, {i.name: _int64(arrays, i.name) for i in self._session.get_inputs()})
