"""GLUE metrics as the benchmark defines them, computed by scikit-learn and scipy.

Metric names follow the GLUE paper and `transformers`' run_glue: `mcc` (Matthews correlation; CoLA and the
diagnostic AX), `acc`, `f1` (positive class 1 = paraphrase / duplicate; MRPC and QQP), `acc_and_f1` (their
mean), `pearson`, `spearmanr` and `corr` (their mean; STS-B). Accuracies and correlations are fractions in [0, 1],
not percentages.

Predictions and labels are label ids (ints) or both label strings as they appear in the GLUE files; regression
takes numbers. scipy's Pearson/Spearman are NaN (with a warning) when either side is constant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# Canonical task key -> (kind, main metric). "mnli-mm" is MNLI mismatched; "ax" the diagnostic set.
_TASKS: dict[str, tuple[str, str]] = {
    "cola": ("mcc", "mcc"),
    "sst-2": ("acc", "acc"),
    "mrpc": ("acc_f1", "acc_and_f1"),
    "sts-b": ("corr", "corr"),
    "qqp": ("acc_f1", "acc_and_f1"),
    "mnli": ("acc", "acc"),
    "mnli-mm": ("acc", "acc"),
    "qnli": ("acc", "acc"),
    "rte": ("acc", "acc"),
    "wnli": ("acc", "acc"),
    "ax": ("mcc", "mcc"),
}
_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "mnlim": "mnli", "mnlimatched": "mnli", "mnlimm": "mnli-mm",
            "mnlimismatched": "mnli-mm", "diagnostic": "ax"}
GLUE_METRIC_TASKS: tuple[str, ...] = tuple(_TASKS)


def glue_task_key(task: str) -> str:
    """Canonical lower-case task name: 'SST2', 'sst-2' and 'SST_2' all give 'sst-2'."""
    key = str(task).strip().lower()
    if key in _TASKS:
        return key
    squashed = key.replace("-", "").replace("_", "")
    if squashed in _ALIASES:
        return _ALIASES[squashed]
    for name in _TASKS:
        if name.replace("-", "") == squashed:
            return name
    raise ValueError(f"unknown GLUE task {task!r}; expected one of {', '.join(_TASKS)}")


def main_metric(task: str) -> str:
    """The metric to select checkpoints by: the one GLUE averages into its score for the task."""
    return _TASKS[glue_task_key(task)][1]


# ------------------------------------------------------------------------------------------ input checks
def _show(value: Any) -> str:
    """repr of a plain Python value, so messages read 0.7 rather than np.float64(0.7)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {array.shape} (take the argmax of logits "
                         "first)")
    if array.size == 0:
        raise ValueError(f"{name}: empty, nothing to score")
    return array


def _pair(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    if len(preds) != len(gold):
        raise ValueError(f"predictions and labels differ in length: {len(preds)} predictions, {len(gold)} labels")
    return preds, gold


def _class_ids(array: np.ndarray, name: str) -> np.ndarray:
    """Label ids as int64, or label strings as str; anything else (probabilities, None) is an error."""
    if array.dtype.kind in "US":
        return array.astype(str)
    if array.dtype.kind == "O":
        if all(isinstance(v, str) for v in array):
            return array.astype(str)
        bad = next(i for i, v in enumerate(array) if not isinstance(v, str))
        raise ValueError(f"{name}[{bad}] = {_show(array[bad])}: expected all label ids or all label strings")
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        fractional = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if fractional.size:
            i = int(fractional[0])
            raise ValueError(f"{name}[{i}] = {_show(array[i])}: expected a label id (an integer); did you pass "
                             "probabilities or regression outputs?")
        return array.astype(np.int64)
    raise ValueError(f"{name}: expected label ids or label strings, got dtype {array.dtype}")


def _classes(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = _pair(predictions, labels)
    preds, gold = _class_ids(preds, "predictions"), _class_ids(gold, "labels")
    if (preds.dtype.kind == "U") != (gold.dtype.kind == "U"):
        raise ValueError("predictions and labels must both be label ids or both be label strings, got "
                         f"{preds.dtype} and {gold.dtype}")
    return preds, gold


def _numbers(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected numbers for a regression task, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}] = {_show(array[bad[0]])}: expected a finite number")
    return array


# ---------------------------------------------------------------------------------------------- metrics
def _accuracy(preds: np.ndarray, gold: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, preds))


def _mcc(preds: np.ndarray, gold: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, preds))


def _binary_f1(preds: np.ndarray, gold: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    positive = "1" if gold.dtype.kind == "U" else 1
    return float(f1_score(gold, preds, pos_label=positive, average="binary", zero_division=0.0))


def _correlations(preds: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    if len(preds) < 2:
        raise ValueError(f"correlation needs at least 2 examples, got {len(preds)}")
    pearson = float(pearsonr(preds, gold)[0])
    spearman = float(spearmanr(preds, gold)[0])
    return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}


def glue_metrics(task: str, predictions: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """The official GLUE metrics of `task` for one split (see the module docstring for the names)."""
    kind = _TASKS[glue_task_key(task)][0]
    if kind == "corr":
        preds, gold = _pair(predictions, labels)
        return _correlations(_numbers(preds, "predictions"), _numbers(gold, "labels"))
    preds, gold = _classes(predictions, labels)
    if kind == "mcc":
        return {"mcc": _mcc(preds, gold)}
    acc = _accuracy(preds, gold)
    if kind == "acc":
        return {"acc": acc}
    f1 = _binary_f1(preds, gold)
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def classification_metrics(predictions: Sequence[Any], labels: Sequence[Any],
                           positive_label: Any = None) -> dict[str, float]:
    """Accuracy, macro-averaged F1 and MCC for any label set; with `positive_label` also that class's F1."""
    from sklearn.metrics import f1_score

    preds, gold = _classes(predictions, labels)
    result = {
        "acc": _accuracy(preds, gold),
        "macro_f1": float(f1_score(gold, preds, average="macro", zero_division=0.0)),
        "mcc": _mcc(preds, gold),
    }
    if positive_label is not None:
        if positive_label not in set(gold.tolist()) | set(preds.tolist()):
            raise ValueError(f"positive_label {positive_label!r} occurs in neither predictions nor labels")
        per_class = f1_score(gold, preds, labels=[positive_label], average=None, zero_division=0.0)
        result["f1"] = float(per_class[0])
    return result


def regression_metrics(predictions: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """Pearson, Spearman, their mean (`corr`), mean squared and mean absolute error."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    preds, gold = _pair(predictions, labels)
    preds, gold = _numbers(preds, "predictions"), _numbers(gold, "labels")
    result = _correlations(preds, gold)
    result["mse"] = float(mean_squared_error(gold, preds))
    result["mae"] = float(mean_absolute_error(gold, preds))
    return result


def is_better(task: str, candidate: dict[str, float], best: dict[str, float] | None) -> bool:
    """Whether `candidate` beats `best` on the task's main metric (NaN never wins)."""
    name = main_metric(task)
    value = candidate[name]
    if math.isnan(value):
        return False
    return best is None or math.isnan(best[name]) or value > best[name]
