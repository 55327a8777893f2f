"""paddlefunnel: Funnel-Transformer (Dai et al., 2020) for PaddlePaddle."""

from .runtime import configure_cpu_math

configure_cpu_math()  # before anything imports paddle

from .config import FunnelConfig, preset_names  # noqa: E402
from .tokenizer import FunnelTokenizer  # noqa: E402
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
from .checkpoint import LoadingInfo  # noqa: E402
from .errors import PaddleFunnelError, WeightsError  # noqa: E402
from .deploy import Predictor  # noqa: E402

from .version import __version__  # noqa: E402

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
    "PaddleFunnelError",
    "WeightsError",
    "Predictor",
    "__version__",
]
