"""Output containers named as in `transformers`, so user code reads `.logits`, `.last_hidden_state`, ..."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

import paddle

Tensor = paddle.Tensor


class ModelOutput(dict):
    """Attribute, key and index access over the fields that are set (None fields are skipped, as in HF).

    A dict subclass like the reference's, so generic code that walks containers (e.g. `paddle.DataParallel`
    looking for output tensors) sees the tensors inside.
    """

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                dict.__setitem__(self, f.name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in {f.name for f in fields(self)}:
            if value is None:
                dict.pop(self, name, None)
            else:
                dict.__setitem__(self, name, value)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return self.to_tuple()[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.keys())})"


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
