"""GLUE metrics as the benchmark defines them, computed by scikit-learn and scipy.

Metric names follow the GLUE paper and `transformers`' run_glue: `mcc` (Matthews correlation; CoLA and the
diagnostic AX), `acc`, `f1` (positive class 1 = paraphrase / duplicate; MRPC and QQP), `acc_and_f1` (their
mean), `pearson`, `spearmanr` and `corr` (their mean; STS-B). Accuracies and correlations are fractions in [0, 1],
not percentages.

Predictions and labels are label ids (ints) or both label strings as they appear in the GLUE files; regression
takes numbers. scipy's Pearson/Spearman are NaN (with a warning) when either side is constant.

Which metrics a task reports, and its name, come from `paddlefunnel.data.glue` (the one table of GLUE's facts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.glue import ACCURACY_F1, GLUE_TASKS, MCC, GlueTaskSpec, find_glue_task
from ..errors import InputError


def _set_key(spec: GlueTaskSpec, split: str | None) -> str:
    return f"{spec.name}-mm".lower() if split == "test_mismatched" else spec.name.lower()


def glue_task_key(task: str) -> str:
    """Lower-case name of the set GLUE scores: 'SST2', 'sst-2' and 'SST_2' all give 'sst-2'; MNLI's
    mismatched set is 'mnli-mm' (its matched set is 'mnli')."""
    return _set_key(*find_glue_task(task))


# Every set GLUE scores, as `glue_task_key` names it: one per submission file (MNLI has two).
GLUE_METRIC_TASKS: tuple[str, ...] = tuple(_set_key(spec, split) for spec in GLUE_TASKS.values()
                                           for split in spec.submission)


def main_metric(task: str) -> str:
    """The metric to select checkpoints by: the one GLUE averages into its score for the task."""
    return find_glue_task(task)[0].main_metric


# ------------------------------------------------------------------------------------------ input checks
def _show(value: Any) -> str:
    """repr of a plain Python value, so messages read 0.7 rather than np.float64(0.7)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name}: expected a 1-D sequence, got shape {array.shape} (take the argmax of logits "
                         "first)")
    if array.size == 0:
        raise InputError(f"{name}: empty, nothing to score")
    return array


def _pair(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    if len(preds) != len(gold):
        raise InputError(f"predictions and labels differ in length: {len(preds)} predictions, {len(gold)} labels")
    return preds, gold


def _class_ids(array: np.ndarray, name: str) -> np.ndarray:
    """Label ids as int64, or label strings as str; anything else (probabilities, None) is an error."""
    if array.dtype.kind in "US":
        return array.astype(str)
    if array.dtype.kind == "O":
        if all(isinstance(v, str) for v in array):
            return array.astype(str)
        bad = next(i for i, v in enumerate(array) if not isinstance(v, str))
        raise InputError(f"{name}[{bad}] = {_show(array[bad])}: expected all label ids or all label strings")
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        fractional = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if fractional.size:
            i = int(fractional[0])
            raise InputError(f"{name}[{i}] = {_show(array[i])}: expected a label id (an integer); did you pass "
                             "probabilities or regression outputs?")
        return array.astype(np.int64)
    raise InputError(f"{name}: expected label ids or label strings, got dtype {array.dtype}")


def _classes(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = _pair(predictions, labels)
    preds, gold = _class_ids(preds, "predictions"), _class_ids(gold, "labels")
    if (preds.dtype.kind == "U") != (gold.dtype.kind == "U"):
        raise InputError("predictions and labels must both be label ids or both be label strings, got "
                         f"{preds.dtype} and {gold.dtype}")
    return preds, gold


def _numbers(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected numbers for a regression task, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InputError(f"{name}[{int(bad[0])}] = {_show(array[bad[0]])}: expected a finite number")
    return array


# ---------------------------------------------------------------------------------------------- metrics
def _sklearn_metrics():
    """sklearn.metrics, imported when a metric is computed: with scipy.stats it takes 1.0 s to import, which
    would add half again to `import paddlefunnel` (2.2 s) for every user, metrics or not (measured here)."""
    import sklearn.metrics

    return sklearn.metrics


def _scipy_stats():
    """scipy.stats, imported when a correlation is computed (see `_sklearn_metrics`)."""
    import scipy.stats

    return scipy.stats


def _accuracy(preds: np.ndarray, gold: np.ndarray) -> float:
    return float(_sklearn_metrics().accuracy_score(gold, preds))


def _mcc(preds: np.ndarray, gold: np.ndarray) -> float:
    return float(_sklearn_metrics().matthews_corrcoef(gold, preds))


def _binary_f1(preds: np.ndarray, gold: np.ndarray) -> float:
    positive = "1" if gold.dtype.kind == "U" else 1
    return float(_sklearn_metrics().f1_score(gold, preds, pos_label=positive, average="binary", zero_division=0.0))


def _correlations(preds: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    if len(preds) < 2:
        raise InputError(f"correlation needs at least 2 examples, got {len(preds)}")
    pearson = float(_scipy_stats().pearsonr(preds, gold)[0])
    spearman = float(_scipy_stats().spearmanr(preds, gold)[0])
    return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}


def glue_metrics(task: str, predictions: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """The official GLUE metrics of `task` for one split (see the module docstring for the names)."""
    spec = find_glue_task(task)[0]
    if spec.is_regression:
        preds, gold = _pair(predictions, labels)
        return _correlations(_numbers(preds, "predictions"), _numbers(gold, "labels"))
    preds, gold = _classes(predictions, labels)
    if spec.metrics == MCC:
        return {"mcc": _mcc(preds, gold)}
    acc = _accuracy(preds, gold)
    if spec.metrics != ACCURACY_F1:
        return {"acc": acc}
    f1 = _binary_f1(preds, gold)
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def classification_metrics(predictions: Sequence[Any], labels: Sequence[Any],
                           positive_label: Any = None) -> dict[str, float]:
    """Accuracy, macro-averaged F1 and MCC for any label set; with `positive_label` also that class's F1."""
    preds, gold = _classes(predictions, labels)
    result = {
        "acc": _accuracy(preds, gold),
        "macro_f1": float(_sklearn_metrics().f1_score(gold, preds, average="macro", zero_division=0.0)),
        "mcc": _mcc(preds, gold),
    }
    if positive_label is not None:
        if positive_label not in set(gold.tolist()) | set(preds.tolist()):
            raise InputError(f"positive_label {positive_label!r} occurs in neither predictions nor labels")
        per_class = _sklearn_metrics().f1_score(gold, preds, labels=[positive_label], average=None, zero_division=0.0)
        result["f1"] = float(per_class[0])
    return result


def regression_metrics(predictions: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """Pearson, Spearman, their mean (`corr`), mean squared and mean absolute error."""
    preds, gold = _pair(predictions, labels)
    preds, gold = _numbers(preds, "predictions"), _numbers(gold, "labels")
    result = _correlations(preds, gold)
    result["mse"] = float(_sklearn_metrics().mean_squared_error(gold, preds))
    result["mae"] = float(_sklearn_metrics().mean_absolute_error(gold, preds))
    return result


def is_better(task: str, candidate: dict[str, float], best: dict[str, float] | None) -> bool:
    """Whether `candidate` beats `best` on the task's main metric (NaN never wins)."""
    name = main_metric(task)
    value = candidate[name]
    if math.isnan(value):
        return False
    return best is None or math.isnan(best[name]) or value > best[name]
