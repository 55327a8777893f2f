"""Model classes by architecture name: the class a checkpoint's config names, and loading "whatever this
directory holds". The names and their facts come from `paddlefunnel.registry`; this maps them to classes."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import FunnelConfig
from ..config_layouts import find_config_file
from ..errors import InputError, MissingFileError
from ..registry import BODY, CONFIG_FILES, EXPORT_FILE
from .heads import (
    FunnelForMaskedLM,
    FunnelForMultipleChoice,
    FunnelForPreTraining,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelForTokenClassification,
)
from .model import FunnelBaseModel, FunnelModel, FunnelPreTrainedModel

MODEL_CLASSES: dict[str, type[FunnelPreTrainedModel]] = {
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
}  # the same names, in the same order, as registry.ARCHITECTURES (checked by the tests)


def model_class_for(config: FunnelConfig) -> type[FunnelPreTrainedModel]:
    """The class named by `config.architectures` (what the checkpoint was saved as), else FunnelModel."""
    for name in config.architectures or []:
        if name in MODEL_CLASSES:
            return MODEL_CLASSES[name]
    return MODEL_CLASSES[BODY]


def load_model(model_dir: str | os.PathLike) -> FunnelPreTrainedModel:
    """The model saved in `model_dir`, as the class its config names, in eval mode; clear errors for a missing
    directory, a directory that is not a model, and an export directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MissingFileError(f"{model_dir}: no such model directory")
    if find_config_file(model_dir) is None:  # config.json, or PaddleNLP's legacy model_config.json
        found = ", ".join(sorted(p.name for p in model_dir.iterdir())[:8]) or "nothing"
        raise MissingFileError(f"{model_dir}: not a model directory (expected {' or '.join(CONFIG_FILES)} and "
                               f"model weights, found {found})")
    if (model_dir / EXPORT_FILE).is_file():
        raise InputError(f"{model_dir}: is an export (it has {EXPORT_FILE}), not a model directory; export the "
                         f"model directory it came from")
    config = FunnelConfig.from_pretrained(model_dir)
    model = model_class_for(config).from_pretrained(model_dir)
    model.eval()
    return model
