"""paddlefunnel: Funnel-Transformer (Dai et al., 2020) for PaddlePaddle."""

from .config import FunnelConfig, preset_names
from .tokenizer import FunnelTokenizer
from .modeling import (
    MODEL_CLASSES,
    FunnelBaseModel,
    FunnelForMaskedLM,
    FunnelForMultipleChoice,
    FunnelForPreTraining,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelForTokenClassification,
    FunnelModel,
    FunnelPreTrainedModel,
)
from .weights import LoadingInfo, WeightsError

__version__ = "0.1.0"

__all__ = [
    "FunnelConfig",
    "preset_names",
    "FunnelTokenizer",
    "MODEL_CLASSES",
    "FunnelBaseModel",
    "FunnelForMaskedLM",
    "FunnelForMultipleChoice",
    "FunnelForPreTraining",
    "FunnelForQuestionAnswering",
    "FunnelForSequenceClassification",
    "FunnelForTokenClassification",
    "FunnelModel",
    "FunnelPreTrainedModel",
    "LoadingInfo",
    "WeightsError",
    "__version__",
]
