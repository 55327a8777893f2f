"""Deployment: export a model to a checked static program (and ONNX), run it, answer raw text with it.

`export` writes and checks an export directory (optionally with an int8 ONNX file), `runners` runs its program
(one runner per backend: Paddle Inference, ONNX Runtime), `predictor` turns raw text into predictions through the
backend chosen (Paddle Inference by default; onnxruntime for int8).
"""

from .export import ExportInfo, export_model
from .predictor import JsonlResult, LineError, Predictor, predict_jsonl

__all__ = ["ExportInfo", "JsonlResult", "LineError", "Predictor", "export_model", "predict_jsonl"]
