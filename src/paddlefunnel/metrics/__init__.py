"""Evaluation metrics: GLUE (scikit-learn / scipy) and the official SQuAD v1.1 / v2.0 scoring."""

from .glue import (
    GLUE_METRIC_TASKS,
    classification_metrics,
    glue_metrics,
    glue_task_key,
    is_better,
    main_metric,
    regression_metrics,
)
from .ner import detect_scheme, entity_spans, ner_metrics
from .squad import normalize_answer, squad_evaluate

__all__ = [
    "GLUE_METRIC_TASKS",
    "classification_metrics",
    "detect_scheme",
    "entity_spans",
    "glue_metrics",
    "glue_task_key",
    "is_better",
    "main_metric",
    "ner_metrics",
    "normalize_answer",
    "regression_metrics",
    "squad_evaluate",
]
