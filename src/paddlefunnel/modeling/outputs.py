"""Output containers named as in `transformers`, so user code reads `.logits`, `.last_hidden_state`, ..."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

import paddle

Tensor = paddle.Tensor


class ModelOutput:
    """Attribute, key and index access over the fields that are set (None fields are skipped, as in HF)."""

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self):
        return iter(self.to_tuple())

    def __len__(self) -> int:
        return len(self.to_tuple())


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class FunnelForPreTrainingOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class MaskedLMOutput(FunnelForPreTrainingOutput):
    pass


@dataclass
class SequenceClassifierOutput(FunnelForPreTrainingOutput):
    pass


@dataclass
class MultipleChoiceModelOutput(FunnelForPreTrainingOutput):
    pass


@dataclass
class TokenClassifierOutput(FunnelForPreTrainingOutput):
    pass


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[Tensor] = None
    start_logits: Optional[Tensor] = None
    end_logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
