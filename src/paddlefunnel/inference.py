"""`Predictor`: raw text in, predictions out, through Paddle Inference on an exported model directory.

Classification models give a label and the probability of every label (regression: a score); question
answering models give the answer text and its probability, found by the SQuAD post-processing (windows over
long contexts, best valid span, "no answer" for SQuAD v2.0 models). Inputs are encoded exactly as training
encoded them (fixed-length padding from the saved task settings), so predictions do not depend on batching.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import FunnelConfig
from .export import INPUT_NAMES, ExportInfo, inference_config
from .io_utils import read_json_object
from .runtime import restore_cpu_threads, reuse_freed_memory

CLASSIFICATION = "FunnelForSequenceClassification"
QUESTION_ANSWERING = "FunnelForQuestionAnswering"
DEFAULT_MAX_SEQ_LENGTH = 128  # classification models exported without task settings
TASK_FILE = "task.json"


def default_device() -> str:
    """"gpu" when Paddle is built with CUDA and sees a GPU, else "cpu"."""
    import paddle

    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return "gpu"
    return "cpu"


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


class Predictor:
    """Run an exported model (`paddlefunnel export`) with Paddle Inference: oneDNN on CPU, or GPU 0.

    Creating one applies `runtime.reuse_freed_memory()` to the process (opt out with
    PADDLEFUNNEL_REUSE_FREED_MEMORY=0).

    `run(...)` returns the raw outputs of any head; `predict(texts, pairs)` answers raw text for
    classification and question-answering models.

    `precision="bf16"` (CPU only) runs the matrix products in bfloat16: on CPUs with AVX512-BF16 or AMX about
    1.5x the fp32 speed, with outputs that differ from fp32 by about 1e-2 relative (see benchmarks/RESULTS.md).
    """

    def __init__(self, directory: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 batch_size: int = 32, precision: str = "fp32") -> None:
        from paddle import inference

        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device={device!r}: expected 'auto', 'cpu' or 'gpu'")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive number")
        self.directory = Path(directory)
        self.info = ExportInfo.read(self.directory)
        self.config = FunnelConfig.from_pretrained(self.directory)
        self.device = default_device() if device == "auto" else device
        self.batch_size = batch_size
        reuse_freed_memory()  # a serving process: avoid page faults on every intermediate tensor (see runtime)
        self.precision = precision
        self._predictor = inference.create_predictor(inference_config(self.directory, self.device, threads, precision))
        self._tokenizer = None

    # ------------------------------------------------------------------------------------------ raw
    @property
    def architecture(self) -> str:
        return self.info.architecture

    def run(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> dict[str, np.ndarray]:
        """Raw outputs (names as in the model's output, e.g. "logits") for token ids of any head, in batches.

        Inputs shorter than `info.min_seq_len` tokens are refused: the exported program assumes every block
        pools, and padding them here would change the outputs (Funnel's pooling is not padding-neutral).
        """
        input_ids = np.asarray(input_ids, dtype=np.int64)
        expected_rank = self.info.input_rank
        if input_ids.ndim != expected_rank:
            layout = "[batch, choices, seq_len]" if expected_rank == 3 else "[batch, seq_len]"
            raise ValueError(f"input_ids has shape {list(input_ids.shape)}; {self.architecture} expects {layout}")
        if input_ids.shape[-1] < self.info.min_seq_len:
            raise ValueError(f"sequences of {input_ids.shape[-1]} tokens are too short for the exported program: "
                             f"it needs at least {self.info.min_seq_len} (pad the inputs)")
        arrays = {"input_ids": input_ids,
                  "attention_mask": np.ones_like(input_ids) if attention_mask is None else attention_mask,
                  "token_type_ids": np.zeros_like(input_ids) if token_type_ids is None else token_type_ids}
        for name in INPUT_NAMES[1:]:
            arrays[name] = np.asarray(arrays[name], dtype=np.int64)
            if arrays[name].shape != input_ids.shape:
                raise ValueError(f"{name} has shape {list(arrays[name].shape)}, expected {list(input_ids.shape)}")
        chunks: list[list[np.ndarray]] = []
        for start in range(0, len(input_ids), self.batch_size):
            chunks.append(self._run_batch({k: v[start:start + self.batch_size] for k, v in arrays.items()}))
        return {name: np.concatenate([chunk[i] for chunk in chunks]) for i, name in enumerate(self.info.outputs)}

    def _run_batch(self, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        predictor = self._predictor
        for name in predictor.get_input_names():
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(arrays[name]))
        predictor.run()
        restore_cpu_threads()  # a predictor run leaves Paddle's dynamic graph on one thread
        return [predictor.get_output_handle(name).copy_to_cpu() for name in predictor.get_output_names()]

    # ---------------------------------------------------------------------------------------- text
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .tokenizer import FunnelTokenizer

            try:
                self._tokenizer = FunnelTokenizer.from_pretrained(self.directory)
            except (FileNotFoundError, OSError) as err:
                raise FileNotFoundError(f"{self.directory}: no tokenizer files (vocab.txt or tokenizer.json) in the "
                                        f"export, so raw text cannot be encoded ({err})") from None
        return self._tokenizer

    def predict(self, texts: str | Sequence[str], pairs: str | Sequence[str | None] | None = None) -> list[dict[str, Any]]:
        """Predictions for raw text: classification (text [+ pair]) or question answering (question + context).

        Classification: {"label", "probabilities": {label: p}} ({"score"} for regression). Question answering:
        {"answer", "score" (its probability among the n-best answers), "nbest"}; "" means no answer (v2.0).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if pairs is not None:
            pairs = [pairs] if isinstance(pairs, str) else list(pairs)
            if len(pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, expected str")
        if self.architecture == CLASSIFICATION:
            return self._classify(texts, pairs)
        if self.architecture == QUESTION_ANSWERING:
            if pairs is None or any(p is None for p in pairs):
                raise ValueError("question answering needs a context for every question (pairs / --text-pair)")
            return self._answer(texts, pairs)
        raise ValueError(f"{self.directory} holds a {self.architecture}, which has no classification or question "
                         f"answering head: predict() supports {CLASSIFICATION} and {QUESTION_ANSWERING} "
                         f"(Predictor.run gives the raw outputs of any head)")

    # -------------------------------------------------------------------------------- classification
    def _task_settings(self) -> dict[str, Any]:
        path = self.directory / TASK_FILE
        return read_json_object(path, "task settings file") if path.is_file() else {}

    def label_names(self) -> list[str] | None:
        """Label names (from the training task settings, else the config's id2label); None for regression."""
        settings = self._task_settings()
        if "label_list" in settings:
            return None if settings["label_list"] is None else [str(label) for label in settings["label_list"]]
        if self.config.num_labels == 1 or self.config.problem_type == "regression":
            return None
        return [str(self.config.id2label.get(i, f"LABEL_{i}")) for i in range(self.config.num_labels)]

    def _classify(self, texts: list[str], pairs: list[str | None] | None) -> list[dict[str, Any]]:
        max_length = max(int(self._task_settings().get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
                         self.info.min_seq_len)
        if pairs is not None and all(p is None for p in pairs):
            pairs = None
        if pairs is not None:
            pairs = ["" if p is None else p for p in pairs]
        batch = self.tokenizer(texts, pairs, truncation="longest_first", max_length=max_length,
                               padding="max_length", return_tensors="np", verbose=False)
        logits = self.run(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])["logits"]
        labels = self.label_names()
        if labels is None:
            return [{"score": float(row[0])} for row in logits]
        multi_label = self.config.problem_type == "multi_label_classification"
        probabilities = _sigmoid(logits) if multi_label else _softmax(logits)
        results = []
        for row in probabilities:
            best = int(row.argmax())
            results.append({"label": labels[best], "probabilities": {labels[i]: float(p) for i, p in enumerate(row)}})
        return results

    # ------------------------------------------------------------------------------ question answering
    def _answer(self, questions: list[str], contexts: list[str]) -> list[dict[str, Any]]:
        from .data import SquadExample
        from .tasks.squad import build_features, load_settings, postprocess_predictions

        settings = load_settings(self.directory)
        if settings.max_seq_length < self.info.min_seq_len:
            raise ValueError(f"max_seq_length={settings.max_seq_length} is below the {self.info.min_seq_len} tokens "
                             f"the exported program needs")
        examples = [SquadExample(qas_id=str(i), question=q, context=c, answers=[])
                    for i, (q, c) in enumerate(zip(questions, contexts))]
        features = build_features(examples, self.tokenizer, settings)
        outputs = self.run(features.arrays["input_ids"], features.arrays["attention_mask"],
                           features.arrays["token_type_ids"])
        predictions, nbest, _ = postprocess_predictions(examples, features, outputs["start_logits"],
                                                        outputs["end_logits"], settings)
        results = []
        for example in examples:
            if example.qas_id not in predictions:
                skipped = dict(features.skipped).get(example.qas_id, "no usable tokens")
                results.append({"answer": "", "score": 0.0, "nbest": [], "error": skipped})
                continue
            answer = predictions[example.qas_id]
            candidates = nbest[example.qas_id]
            score = next((c["probability"] for c in candidates if c["text"] == answer), 0.0)
            results.append({"answer": answer, "score": float(score),
                            "nbest": [{"text": c["text"], "probability": c["probability"]} for c in candidates[:5]]})
        return results


# ------------------------------------------------------------------------------------------ JSON lines
@dataclass
class LineError:
    line: int
    message: str


@dataclass
class JsonlResult:
    written: int  # predictions written
    errors: list[LineError]


def _text_fields(record: Any, question_answering: bool) -> tuple[str, str | None]:
    """(text, pair) of one input object: {"text", "text_pair"} or, for QA, {"question", "context"}."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    first, second = ("question", "context") if question_answering and "question" in record else ("text", "text_pair")
    if first not in record:
        wanted = '"text" (and "text_pair")' + (' or "question" and "context"' if question_answering else "")
        raise ValueError(f"missing field {first!r}: each line needs {wanted}")
    text, pair = record[first], record.get(second)
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise ValueError(f"fields {first!r} and {second!r} must be strings")
    if question_answering and pair is None:
        raise ValueError(f"missing field {second!r}: question answering needs a context")
    return text, pair


def predict_jsonl(predictor: Predictor, input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                  chunk_size: int = 256, progress: bool = True) -> JsonlResult:
    """One JSON object per input line -> one JSON object per output line (stdout without `output_path`).

    A line that is not a JSON object with the needed text fields is reported (line number and reason, on
    stderr and as {"line", "error"} in the output at its place); the other lines are still predicted.
    """
    import sys

    from tqdm import tqdm

    from .io_utils import atomic_path

    input_path = Path(input_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such input file")
    question_answering = predictor.architecture == QUESTION_ANSWERING
    with input_path.open(encoding="utf-8") as handle:
        lines = [(number, line) for number, line in enumerate(handle, start=1) if line.strip()]
    errors: list[LineError] = []
    written = 0

    def write_all(out) -> None:
        nonlocal written
        bar = tqdm(total=len(lines), desc="predict", unit="line", disable=not progress, file=sys.stderr)
        for start in range(0, len(lines), chunk_size):
            rows: list[tuple[int, Any, str | None, str | None]] = []  # (line, record, text, pair); text None = error
            for number, line in lines[start:start + chunk_size]:
                try:
                    record = json.loads(line)
                    text, pair = _text_fields(record, question_answering)
                    rows.append((number, record, text, pair))
                except (json.JSONDecodeError, ValueError) as err:
                    message = f"not valid JSON ({err.msg})" if isinstance(err, json.JSONDecodeError) else str(err)
                    errors.append(LineError(number, message))
                    print(f"{input_path}:{number}: error: {message}", file=sys.stderr)
                    rows.append((number, None, None, message))
            good = [row for row in rows if row[2] is not None]
            pairs = [row[3] for row in good]
            predictions = iter(predictor.predict([row[2] for row in good],
                                                 None if all(p is None for p in pairs) else pairs) if good else [])
            for number, record, text, extra in rows:
                if text is None:
                    out.write(json.dumps({"line": number, "error": extra}, ensure_ascii=False) + "\n")
                    continue
                result = next(predictions)
                if isinstance(record, dict) and "id" in record:
                    result = {"id": record["id"], **result}
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
                written += 1
            bar.update(len(rows))
        bar.close()

    if output_path is None:
        write_all(sys.stdout)
    else:
        with atomic_path(output_path) as tmp, tmp.open("w", encoding="utf-8") as out:
            write_all(out)
    return JsonlResult(written, errors)
