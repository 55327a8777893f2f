"""paddlefunnel: Funnel-Transformer (Dai et al., 2020) for PaddlePaddle."""

from .runtime import configure_cpu_math

configure_cpu_math()  # before anything imports paddle

from .config import FunnelConfig, preset_names  # noqa: E402
from .tokenizer import FunnelTokenizer
from .modeling import (  # noqa: E402
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
from .weights import LoadingInfo, WeightsError  # noqa: E402
from .inference import Predictor  # noqa: E402

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
    "Predictor",
    "__version__",
]
