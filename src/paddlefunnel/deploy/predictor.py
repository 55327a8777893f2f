"""`Predictor`: raw text in, predictions out, through Paddle Inference on an exported model directory.

Classification models give a label and the probability of every label (regression: a score); question
answering models give the answer text and its probability, found by the SQuAD post-processing (windows over
long contexts, best valid span, "no answer" for SQuAD v2.0 models). Inputs are encoded exactly as training
encoded them (fixed-length padding from the saved task settings), so predictions do not depend on batching.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from ..config import FunnelConfig
from ..data import SquadExample
from ..data._common import decoding_error
from ..errors import InputError, MissingDependencyError, MissingFileError
from ..io_utils import atomic_path
from ..registry import architecture_serving
from ..runtime import reuse_freed_memory
from ..tasks.classification import DEFAULT_MAX_SEQ_LENGTH, read_task_settings
from ..tasks.multiple_choice import ChoiceExample, choice_letter, encode_choices, read_choice_settings, resolve_lengths
from ..tasks.squad import build_features, load_settings, postprocess_predictions
from ..tasks.token_classification import load_ner_settings, tag_texts
from ..tokenizer import FunnelTokenizer
from .export import INPUT_NAMES, ExportInfo
from .runners import BACKENDS, DEVICES, ONNX_PRECISIONS, PRECISIONS, OnnxRunner, PaddleInferenceRunner, default_device

logger = logging.getLogger("paddlefunnel")

CLASSIFICATION = architecture_serving("classification")
QUESTION_ANSWERING = architecture_serving("question_answering")
MULTIPLE_CHOICE = architecture_serving("multiple_choice")
TOKEN_CLASSIFICATION = architecture_serving("token_classification")


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

    `backend`: "paddle" (Paddle Inference, the default for fp32 / bf16) or "onnxruntime" (CPU; needs an export
    made with `--onnx` or `--quantize int8`, and the `onnx` extra). `precision="int8"` (an export made with
    `--quantize int8`) runs the int8 ONNX file on onnxruntime, the default backend for it: int8 weights for the
    matrix products, outputs within export.INT8_TOLERANCE of fp32 (see deploy/export.py for the measured choice).
    """

    def __init__(self, directory: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 batch_size: int = 32, precision: str = "fp32", backend: str | None = None) -> None:
        if device not in ("auto", *DEVICES):
            raise InputError(f"device={device!r}: expected 'auto', 'cpu' or 'gpu'")
        if batch_size < 1:
            raise InputError(f"batch_size={batch_size}: expected a positive number")
        self.directory = Path(directory)
        self.info = ExportInfo.read(self.directory)
        self.backend = choose_backend(self.info, self.directory, precision, backend, device)
        self.config = FunnelConfig.from_pretrained(self.directory)
        if self.backend == "onnxruntime":
            self.device = "cpu"
        else:
            self.device = default_device() if device == "auto" else device
        self.batch_size = batch_size
        reuse_freed_memory()  # a serving process: avoid page faults on every intermediate tensor (see runtime)
        self.precision = precision
        if self.backend == "onnxruntime":
            self._runner = OnnxRunner(self.directory / onnx_file(self.info, precision), threads)
        else:
            self._runner = PaddleInferenceRunner(self.directory, self.device, threads, precision)
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
            raise InputError(f"input_ids has shape {list(input_ids.shape)}; {self.architecture} expects {layout}")
        if input_ids.shape[-1] < self.info.min_seq_len:
            raise InputError(f"sequences of {input_ids.shape[-1]} tokens are too short for the exported program: "
                             f"it needs at least {self.info.min_seq_len} (pad the inputs)")
        arrays = {"input_ids": input_ids,
                  "attention_mask": np.ones_like(input_ids) if attention_mask is None else attention_mask,
                  "token_type_ids": np.zeros_like(input_ids) if token_type_ids is None else token_type_ids}
        for name in INPUT_NAMES[1:]:
            arrays[name] = np.asarray(arrays[name], dtype=np.int64)
            if arrays[name].shape != input_ids.shape:
                raise InputError(f"{name} has shape {list(arrays[name].shape)}, expected {list(input_ids.shape)}")
        chunks: list[list[np.ndarray]] = []
        for start in range(0, len(input_ids), self.batch_size):
            chunks.append(self._runner.run({k: v[start:start + self.batch_size] for k, v in arrays.items()}))
        return {name: np.concatenate([chunk[i] for chunk in chunks]) for i, name in enumerate(self.info.outputs)}

    # ---------------------------------------------------------------------------------------- text
    @property
    def tokenizer(self) -> FunnelTokenizer:
        if self._tokenizer is None:
            try:
                self._tokenizer = FunnelTokenizer.from_pretrained(self.directory)
            except (FileNotFoundError, OSError) as err:
                raise MissingFileError(f"{self.directory}: no tokenizer files (vocab.txt or tokenizer.json) in the "
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
                raise InputError(f"{len(texts)} texts but {len(pairs)} pairs")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, expected str")
        if self.architecture == CLASSIFICATION:
            return self._classify(texts, pairs)
        if self.architecture == TOKEN_CLASSIFICATION:
            return self._tag(texts, pairs)
        if self.architecture == QUESTION_ANSWERING:
            if pairs is None or any(p is None for p in pairs):
                raise InputError("question answering needs a context for every question (pairs / --text-pair)")
            return self._answer(texts, pairs)
        raise InputError(f"{self.directory} holds a {self.architecture}, which has no classification or question "
                         f"answering head: predict() supports {CLASSIFICATION} and {QUESTION_ANSWERING} "
                         f"(Predictor.run gives the raw outputs of any head)")

    # -------------------------------------------------------------------------------- classification
    def label_names(self) -> list[str] | None:
        """Label names (from the training task settings, else the config's id2label); None for regression."""
        settings = read_task_settings(self.directory)
        if "label_list" in settings:
            return None if settings["label_list"] is None else [str(label) for label in settings["label_list"]]
        if self.config.num_labels == 1 or self.config.problem_type == "regression":
            return None
        return [str(self.config.id2label.get(i, f"LABEL_{i}")) for i in range(self.config.num_labels)]

    def _classify(self, texts: list[str], pairs: list[str | None] | None) -> list[dict[str, Any]]:
        max_length = max(int(read_task_settings(self.directory).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
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

    # ------------------------------------------------------------------------------ token classification
    def _tag(self, texts: list[str], pairs: list[str | None] | None) -> list[dict[str, Any]]:
        """{"entities": [{"entity", "text", "start", "end", "score"}]} per text; start/end are character offsets
        into the text (see tasks.token_classification.tag_texts)."""
        if pairs is not None and any(p is not None for p in pairs):
            raise InputError("token classification tags one text at a time: no text pairs")
        settings = load_ner_settings(self.directory)
        if settings.max_seq_length < self.info.min_seq_len:
            raise InputError(f"max_seq_length={settings.max_seq_length} is below the {self.info.min_seq_len} tokens "
                             f"the exported program needs")
        def logits(arrays: dict[str, np.ndarray]) -> np.ndarray:
            return self.run(arrays["input_ids"], arrays["attention_mask"], arrays["token_type_ids"])["logits"]

        return [{"entities": entities} for entities in tag_texts(texts, self.tokenizer, settings, logits)]

    # ---------------------------------------------------------------------------------- multiple choice
    def predict_choices(self, contexts: Sequence[str], questions: Sequence[str],
                        choices: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
        """Multiple choice: {"label": index of the best choice, "answer": its letter, "probabilities": [...]}
        per question. Encoded as training encoded them (tasks.multiple_choice: fill a "_" blank, lengths from
        the saved settings); questions may have different numbers of choices (each count runs apart)."""
        if self.architecture != MULTIPLE_CHOICE:
            raise InputError(f"{self.directory} holds a {self.architecture}: predict_choices needs a "
                             f"{MULTIPLE_CHOICE} (use predict() for text)")
        if not len(contexts) == len(questions) == len(choices):
            raise InputError(f"{len(contexts)} contexts, {len(questions)} questions and {len(choices)} choice lists: "
                             "expected one of each per question")
        examples = [ChoiceExample(str(i), c, q, tuple(options))
                    for i, (c, q, options) in enumerate(zip(contexts, questions, choices))]
        for example in examples:
            _check_choice_example(example)
        settings = read_choice_settings(self.directory)
        max_seq_length, max_qa_length = resolve_lengths(settings.get("data_format", "race"),
                                                        settings.get("max_seq_length"), settings.get("max_qa_length"))
        if max_seq_length < self.info.min_seq_len:
            raise InputError(f"max_seq_length={max_seq_length} is below the {self.info.min_seq_len} tokens the "
                             f"exported program needs")
        results: list[dict[str, Any]] = [{} for _ in examples]
        for count in sorted({example.num_choices for example in examples}):
            group = [i for i, example in enumerate(examples) if example.num_choices == count]
            features = encode_choices([examples[i] for i in group], self.tokenizer, max_seq_length, max_qa_length,
                                      with_labels=False).arrays
            logits = self.run(features["input_ids"], features["attention_mask"], features["token_type_ids"])["logits"]
            for i, row in zip(group, _softmax(logits.astype(np.float64))):
                best = int(row.argmax())
                results[i] = {"label": best, "answer": choice_letter(best), "probabilities": [float(p) for p in row]}
        return results

    # ------------------------------------------------------------------------------ question answering
    def _answer(self, questions: list[str], contexts: list[str]) -> list[dict[str, Any]]:
        settings = load_settings(self.directory)
        if settings.max_seq_length < self.info.min_seq_len:
            raise InputError(f"max_seq_length={settings.max_seq_length} is below the {self.info.min_seq_len} tokens "
                             f"the exported program needs")
        # An empty question or context is an error of that item alone: it never reaches the features (where a
        # batch of nothing but empty ones would be refused whole) and its result says why.
        blank = {str(i): _blank_qa_field(q, c) for i, (q, c) in enumerate(zip(questions, contexts))}
        examples = [SquadExample(qas_id=str(i), question=q, context=c, answers=[])
                    for i, (q, c) in enumerate(zip(questions, contexts))]
        usable = [example for example in examples if blank[example.qas_id] is None]
        predictions: dict[str, str] = {}
        nbest: dict[str, list[dict[str, Any]]] = {}
        skipped_reasons: dict[str, str] = {}
        if usable:
            features = build_features(usable, self.tokenizer, settings)
            outputs = self.run(features.arrays["input_ids"], features.arrays["attention_mask"],
                               features.arrays["token_type_ids"])
            predictions, nbest, _ = postprocess_predictions(usable, features, outputs["start_logits"],
                                                            outputs["end_logits"], settings)
            skipped_reasons = dict(features.skipped)
        results = []
        for example in examples:
            if blank[example.qas_id] is not None:
                results.append({"answer": "", "score": 0.0, "nbest": [], "error": blank[example.qas_id]})
                continue
            if example.qas_id not in predictions:
                skipped = skipped_reasons.get(example.qas_id, "no usable tokens")
                results.append({"answer": "", "score": 0.0, "nbest": [], "error": skipped})
                continue
            answer = predictions[example.qas_id]
            candidates = nbest[example.qas_id]
            score = next((c["probability"] for c in candidates if c["text"] == answer), 0.0)
            results.append({"answer": answer, "score": float(score),
                            "nbest": [{"text": c["text"], "probability": c["probability"]} for c in candidates[:5]]})
        return results


# ------------------------------------------------------------------------------------------ backends
def choose_backend(info: ExportInfo, directory: Path, precision: str, backend: str | None, device: str) -> str:
    """The backend serving `precision` (None: "onnxruntime" for int8, else "paddle"); InputError when this export,
    device or installation cannot serve the combination (before any predictor is built)."""
    if precision not in (*PRECISIONS, *ONNX_PRECISIONS):
        raise InputError(f"precision={precision!r}: expected one of fp32, bf16, int8")
    if backend is None:
        backend = "onnxruntime" if precision == "int8" else "paddle"
    if backend not in BACKENDS:
        raise InputError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "paddle":
        if precision not in PRECISIONS:
            raise InputError(f"precision={precision!r} is served by the onnxruntime backend, not Paddle Inference: "
                             f"use backend='onnxruntime' (CLI: --backend onnxruntime)")
        return backend
    if precision not in ONNX_PRECISIONS:
        raise InputError(f"precision={precision!r} is a Paddle Inference setting: the onnxruntime backend serves "
                         f"{', '.join(ONNX_PRECISIONS)}")
    if device == "gpu":
        raise InputError("the onnxruntime backend runs on CPU here: use device='cpu' (or backend='paddle')")
    onnx_file(info, precision, directory)  # refuses an export without the file
    try:
        import onnxruntime  # noqa: F401  (optional: the `onnx` extra)
    except ImportError:
        raise MissingDependencyError("backend='onnxruntime' needs onnxruntime: pip install 'paddlefunnel[onnx]'") \
            from None
    return backend


def onnx_file(info: ExportInfo, precision: str, directory: Path | None = None) -> str:
    """The export's ONNX file for `precision`; InputError naming the export option that writes it if absent."""
    name = info.onnx if precision == "fp32" else (info.quantized or {}).get(precision)
    if name is None:
        option = "--onnx" if precision == "fp32" else f"--quantize {precision}"
        where = f"{directory}: " if directory is not None else ""
        raise InputError(f"{where}this export has no {precision} ONNX file for the onnxruntime backend: re-export "
                         f"with `paddlefunnel export MODEL_DIR OUT_DIR {option}`")
    return name


# ------------------------------------------------------------------------------------------ JSON lines
@dataclass
class LineError:
    line: int
    message: str


@dataclass
class JsonlResult:
    written: int  # predictions written
    errors: list[LineError]


def _blank_qa_field(question: str, context: str) -> str | None:
    """Why a question-answering item cannot be answered (an empty question or context), or None."""
    if not question.strip():
        return "empty question"
    if not context.strip():
        return "empty context: there is nothing to find the answer in"
    return None


def _text_fields(record: Any, question_answering: bool) -> tuple[str, str | None]:
    """(text, pair) of one input object: {"text", "text_pair"} or, for QA, {"question", "context"}."""
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    first, second = ("question", "context") if question_answering and "question" in record else ("text", "text_pair")
    if first not in record:
        wanted = '"text" (and "text_pair")' + (' or "question" and "context"' if question_answering else "")
        raise InputError(f"missing field {first!r}: each line needs {wanted}")
    text, pair = record[first], record.get(second)
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise InputError(f"fields {first!r} and {second!r} must be strings")
    if question_answering and pair is None:
        raise InputError(f"missing field {second!r}: question answering needs a context")
    if question_answering and first == "question" and _blank_qa_field(text, pair) is not None:
        raise InputError(_blank_qa_field(text, pair))
    return text, pair


def _check_choice_example(example: ChoiceExample) -> None:
    """InputError unless a multiple-choice item has string texts, two or more choices and some context/question."""
    if not isinstance(example.context, str) or not isinstance(example.question, str):
        raise InputError('"context" and "question" must be strings')
    if len(example.choices) < 2 or not all(isinstance(c, str) for c in example.choices):
        raise InputError(f'"choices" is {list(example.choices)!r}, expected a list of two or more strings')
    if not (example.context.strip() or example.question.strip()):
        raise InputError('empty "context" and "question": there is nothing to choose by')


def _choice_fields(record: Any) -> tuple[str, str, list[str]]:
    """(context, question, choices) of one multiple-choice input object {"context", "question", "choices"}."""
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    if "choices" not in record or not isinstance(record["choices"], list):
        raise InputError('missing or non-list field "choices": each line needs {"context", "question", "choices"}')
    context, question = record.get("context", ""), record.get("question", "")
    _check_choice_example(ChoiceExample("", context, question, tuple(record["choices"])))
    return context, question, record["choices"]


def _predict_choice_chunk(predictor: Predictor, input_path: Path,
                          chunk: list[tuple[int, str]]) -> tuple[list[dict[str, Any]], list[LineError]]:
    """`_predict_chunk` for multiple-choice models: lines {"context", "question", "choices"} (question optional)."""
    errors: list[LineError] = []
    rows: dict[int, dict[str, Any]] = {}
    records: dict[int, tuple[Any, str, str, list[str]]] = {}
    for number, line in chunk:
        try:
            if not line.strip():
                raise InputError("blank line: expected a JSON object")
            record = json.loads(line)
            records[number] = (record, *_choice_fields(record))
        except (json.JSONDecodeError, InputError) as err:
            message = f"not valid JSON ({err.msg})" if isinstance(err, json.JSONDecodeError) else str(err)
            logger.warning("%s:%d: error: %s", input_path, number, message)
            errors.append(LineError(number, message))
            rows[number] = {"line": number, "error": message}
    if records:
        values = list(records.values())
        predictions = predictor.predict_choices([v[1] for v in values], [v[2] for v in values],
                                                [v[3] for v in values])
        for (number, (record, *_)), prediction in zip(records.items(), predictions):
            rows[number] = {"id": record["id"], **prediction} if "id" in record else prediction
    return [rows[number] for number, _ in chunk], errors


def predict_jsonl(predictor: Predictor, input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                  chunk_size: int = 256, progress: bool = True) -> JsonlResult:
    """One JSON object per input line -> one JSON object per output line (stdout without `output_path`):
    output line N always answers input line N.

    A line that is blank, not a JSON object with the needed text fields, or that cannot be answered (an empty
    question or context) is reported (logged as a warning, "{path}:{line}: error: {reason}", returned in
    `errors`, and written as {"line", "error"} at its place in the output); the other lines are still predicted.
    """
    input_path = Path(input_path)
    if not input_path.is_file():
        raise MissingFileError(f"{input_path}: no such input file")
    try:
        with input_path.open(encoding="utf-8") as handle:
            lines = list(enumerate(handle, start=1))
    except UnicodeDecodeError as err:
        raise decoding_error(input_path, err) from None
    if output_path is None:
        return _write_predictions(predictor, input_path, lines, sys.stdout, chunk_size, progress)
    with atomic_path(output_path) as tmp, tmp.open("w", encoding="utf-8") as out:
        return _write_predictions(predictor, input_path, lines, out, chunk_size, progress)


def _write_predictions(predictor: Predictor, input_path: Path, lines: list[tuple[int, str]], out: TextIO,
                       chunk_size: int, progress: bool) -> JsonlResult:
    result = JsonlResult(0, [])
    with tqdm(total=len(lines), desc="predict", unit="line", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(lines), chunk_size):
            rows, bad = _predict_chunk(predictor, input_path, lines[start:start + chunk_size])
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            result.written += len(rows) - len(bad)
            result.errors.extend(bad)
            bar.update(len(rows))
    return result


def _predict_chunk(predictor: Predictor, input_path: Path,
                   chunk: list[tuple[int, str]]) -> tuple[list[dict[str, Any]], list[LineError]]:
    """The output objects for `chunk` in input order: a prediction (with the input's "id" if it has one), or
    {"line", "error"} for a bad line; and the bad lines (logged as they are found)."""
    if predictor.architecture == MULTIPLE_CHOICE:
        return _predict_choice_chunk(predictor, input_path, chunk)
    errors: list[LineError] = []
    question_answering = predictor.architecture == QUESTION_ANSWERING
    records: dict[int, tuple[Any, str, str | None]] = {}  # line -> (record, text, pair)
    rows: dict[int, dict[str, Any]] = {}
    def bad_line(number: int, message: str) -> None:
        logger.warning("%s:%d: error: %s", input_path, number, message)
        errors.append(LineError(number, message))
        rows[number] = {"line": number, "error": message}

    for number, line in chunk:
        if not line.strip():
            bad_line(number, "blank line: expected a JSON object")
            continue
        try:
            record = json.loads(line)
            records[number] = (record, *_text_fields(record, question_answering))
        except (json.JSONDecodeError, InputError) as err:
            bad_line(number, f"not valid JSON ({err.msg})" if isinstance(err, json.JSONDecodeError) else str(err))
    if records:
        pairs = [pair for _, _, pair in records.values()]
        predictions = predictor.predict([text for _, text, _ in records.values()],
                                        None if all(p is None for p in pairs) else pairs)
        for (number, (record, _, _)), prediction in zip(records.items(), predictions):
            if "error" in prediction:  # e.g. a context with no tokens left after tokenisation
                bad_line(number, str(prediction["error"]))
                continue
            rows[number] = {"id": record["id"], **prediction} if "id" in record else prediction
    errors.sort(key=lambda error: error.line)
    return [rows[number] for number, _ in chunk], errors
