"""GLUE metrics: hand-worked cases, cross-checks against scikit-learn / scipy, and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, mean_absolute_error, mean_squared_error

from paddlefunnel.metrics.glue import (
    GLUE_METRIC_TASKS,
    classification_metrics,
    glue_metrics,
    glue_task_key,
    is_better,
    main_metric,
    regression_metrics,
)


# ------------------------------------------------------------------------------------------- by hand
def test_mrpc_by_hand() -> None:
    # 2 of 4 right; TP 2 (positions 0, 2), FP 1 (1), FN 1 (3): P = R = 2/3, F1 = 2/3
    result = glue_metrics("MRPC", [1, 1, 1, 0], [1, 0, 1, 1])
    assert result == pytest.approx({"acc": 0.5, "f1": 2 / 3, "acc_and_f1": (0.5 + 2 / 3) / 2})


def test_qqp_f1_uses_class_1_as_positive() -> None:
    # all predictions 0: TP 0 -> F1 0 although accuracy is 3/4
    assert glue_metrics("qqp", [0, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx({"acc": 0.75, "f1": 0.0,
                                                                             "acc_and_f1": 0.375})


def test_cola_mcc_by_hand() -> None:
    # TP 1, FP 1, TN 2, FN 0: (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 2 / sqrt(2*1*3*2)
    assert glue_metrics("cola", [1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx({"mcc": 2 / math.sqrt(12)})


def test_stsb_by_hand() -> None:
    # x = 1,2,3 (mean 2); y = 1,2,4 (mean 7/3): sum dx*dy = 3, sum dx^2 = 2, sum dy^2 = 14/3
    pearson = 3 / math.sqrt(2 * 14 / 3)
    result = glue_metrics("STS-B", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert result == pytest.approx({"pearson": pearson, "spearmanr": 1.0, "corr": (pearson + 1.0) / 2})


def test_accuracy_tasks_and_string_labels() -> None:
    assert glue_metrics("sst2", [1, 0, 1], [1, 1, 1]) == pytest.approx({"acc": 2 / 3})
    labels = ["entailment", "neutral", "contradiction", "neutral"]
    preds = ["entailment", "neutral", "neutral", "neutral"]
    assert glue_metrics("MNLI-mm", preds, labels) == pytest.approx({"acc": 0.75})
    # MRPC with the files' label strings: "1" is the positive class
    assert glue_metrics("mrpc", ["1", "1", "1", "0"], ["1", "0", "1", "1"])["f1"] == pytest.approx(2 / 3)


def test_main_metric_and_task_names() -> None:
    assert {t: main_metric(t) for t in ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "mnli-mm", "QNLI", "RTE",
                                         "WNLI", "AX")} == {
        "CoLA": "mcc", "SST-2": "acc", "MRPC": "acc_and_f1", "STS-B": "corr", "QQP": "acc_and_f1",
        "MNLI": "acc", "mnli-mm": "acc", "QNLI": "acc", "RTE": "acc", "WNLI": "acc", "AX": "mcc"}
    assert glue_task_key("sts_b") == glue_task_key("STSB") == "sts-b"
    assert glue_task_key("mnli_mismatched") == "mnli-mm" and glue_task_key("MNLI-m") == "mnli"


# ----------------------------------------------------------------------------------- cross-checks
@pytest.mark.parametrize("task", GLUE_METRIC_TASKS)
def test_every_task_matches_sklearn_and_scipy(task: str) -> None:
    rng = np.random.default_rng(GLUE_METRIC_TASKS.index(task))
    if task == "sts-b":
        labels, preds = rng.uniform(0, 5, 200), rng.uniform(0, 5, 200)
        result = glue_metrics(task, preds, labels)
        assert result["pearson"] == pytest.approx(pearsonr(preds, labels)[0])
        assert result["spearmanr"] == pytest.approx(spearmanr(preds, labels)[0])
        return
    classes = 3 if task in ("mnli", "mnli-mm", "ax") else 2
    labels, preds = rng.integers(0, classes, 200), rng.integers(0, classes, 200)
    result = glue_metrics(task, preds.tolist(), labels)
    if task in ("cola", "ax"):
        assert result == pytest.approx({"mcc": matthews_corrcoef(labels, preds)})
    elif task in ("mrpc", "qqp"):
        acc, f1 = accuracy_score(labels, preds), f1_score(labels, preds)
        assert result == pytest.approx({"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2})
    else:
        assert result == pytest.approx({"acc": accuracy_score(labels, preds)})


def test_generic_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(7)
    labels, preds = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    result = classification_metrics(preds, labels, positive_label=2)
    assert result == pytest.approx({
        "acc": accuracy_score(labels, preds),
        "macro_f1": f1_score(labels, preds, average="macro"),
        "mcc": matthews_corrcoef(labels, preds),
        "f1": f1_score(labels == 2, preds == 2),
    })
    assert "f1" not in classification_metrics(preds, labels)
    y, p = rng.normal(size=100), rng.normal(size=100)
    reg = regression_metrics(p, y)
    assert reg["mse"] == pytest.approx(mean_squared_error(y, p))
    assert reg["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert reg["corr"] == pytest.approx((pearsonr(p, y)[0] + spearmanr(p, y)[0]) / 2)


def test_is_better_never_picks_nan() -> None:
    assert is_better("stsb", {"corr": 0.2}, None)
    assert is_better("stsb", {"corr": 0.3}, {"corr": 0.2})
    assert not is_better("stsb", {"corr": 0.2}, {"corr": 0.2})
    assert not is_better("stsb", {"corr": float("nan")}, None)
    assert is_better("stsb", {"corr": 0.0}, {"corr": float("nan")})


# ------------------------------------------------------------------------------------------ bad input
def test_bad_input_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="3 predictions, 2 labels"):
        glue_metrics("sst-2", [1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="unknown GLUE task 'foo'"):
        glue_metrics("foo", [1], [1])
    with pytest.raises(ValueError, match="unknown GLUE task"):
        main_metric("squad")
    with pytest.raises(ValueError, match="1-D.*argmax"):
        glue_metrics("rte", [[0.1, 0.9]], [1])
    with pytest.raises(ValueError, match=r"predictions\[1\] = 0.7.*probabilities"):
        glue_metrics("rte", [1.0, 0.7], [1, 0])
    with pytest.raises(ValueError, match="both be label ids or both be label strings"):
        glue_metrics("rte", ["entailment"], [0])
    with pytest.raises(ValueError, match="empty"):
        glue_metrics("cola", [], [])
    with pytest.raises(ValueError, match=r"labels\[1\] = nan: expected a finite number"):
        glue_metrics("sts-b", [1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="positive_label 9"):
        classification_metrics([0, 1], [1, 0], positive_label=9)
