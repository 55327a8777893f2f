"""Funnel-Transformer in Paddle: embeddings -> pooled encoder blocks -> (decoder) -> task heads."""

from .auto import MODEL_CLASSES, load_model, model_class_for
from .heads import (
    FunnelForMaskedLM,
    FunnelForMultipleChoice,
    FunnelForPreTraining,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelForTokenClassification,
)
from .model import FunnelBaseModel, FunnelModel, FunnelPreTrainedModel
from .outputs import (
    BaseModelOutput,
    FunnelForPreTrainingOutput,
    MaskedLMOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

__all__ = [*MODEL_CLASSES, "FunnelPreTrainedModel", "MODEL_CLASSES", "load_model", "model_class_for",
           "ModelOutput", "BaseModelOutput", "FunnelForPreTrainingOutput", "MaskedLMOutput", "MultipleChoiceModelOutput",
           "QuestionAnsweringModelOutput", "SequenceClassifierOutput", "TokenClassifierOutput"]
