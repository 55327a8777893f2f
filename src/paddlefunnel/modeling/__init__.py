"""Funnel-Transformer in Paddle: embeddings -> pooled encoder blocks -> (decoder) -> task heads."""

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

MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (
        FunnelModel,
        FunnelBaseModel,
        FunnelForPreTraining,
        FunnelForMaskedLM,
        FunnelForSequenceClassification,
        FunnelForMultipleChoice,
        FunnelForTokenClassification,
        FunnelForQuestionAnswering,
    )
}

__all__ = [*MODEL_CLASSES, "FunnelPreTrainedModel", "MODEL_CLASSES", "ModelOutput", "BaseModelOutput",
           "FunnelForPreTrainingOutput", "MaskedLMOutput", "MultipleChoiceModelOutput",
           "QuestionAnsweringModelOutput", "SequenceClassifierOutput", "TokenClassifierOutput"]
