"""Task heads on top of the Funnel bodies, with the reference's parameter names and losses."""

from __future__ import annotations

import paddle
import paddle.nn as nn

from ..config import FunnelConfig
from ..errors import InputError
from .activations import get_activation
from .inputs import as_tensor
from .ops import Dropout, Linear, dim
from .losses import (
    multiple_choice_loss,
    replaced_token_loss,
    sequence_classification_loss,
    span_loss,
    token_classification_loss,
)
from .model import FunnelBaseModel, FunnelModel, FunnelPreTrainedModel
from .outputs import (
    FunnelForPreTrainingOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

Tensor = paddle.Tensor


def _finish(output, return_dict: bool | None, config: FunnelConfig):
    return output if (config.return_dict if return_dict is None else return_dict) else output.to_tuple()


def _body_outputs(body, input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states,
                  **options):
    return body(
        input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        inputs_embeds=inputs_embeds,
        output_attentions=output_attentions,
        output_hidden_states=output_hidden_states,
        return_dict=True,
        **options,
    )


# ------------------------------------------------------------------------------------------- head layers
class FunnelClassificationHead(nn.Layer):
    """Pooled <cls> vector -> dense + tanh -> dropout -> labels."""

    def __init__(self, config: FunnelConfig, n_labels: int) -> None:
        super().__init__()
        self.linear_hidden = Linear(config.d_model, config.d_model)
        self.dropout = Dropout(config.hidden_dropout)
        self.linear_out = Linear(config.d_model, n_labels)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear_out(self.dropout(paddle.tanh(self.linear_hidden(hidden))))


class FunnelDiscriminatorPredictions(nn.Layer):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__()
        self.dense = Linear(config.d_model, config.d_model)
        self.activation = get_activation(config.hidden_act)
        self.dense_prediction = Linear(config.d_model, 1)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.dense_prediction(self.activation(self.dense(hidden))).squeeze(-1)


class FunnelLMHead(nn.Layer):
    """Vocabulary projection; shares the word-embedding matrix when `tie_word_embeddings` (the default).

    Its weight (own or shared) is laid out [vocab, d_model] like the embedding, so it is not a Linear and
    is never transposed on conversion.
    """

    def __init__(self, config: FunnelConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self._tied_embeddings = [word_embeddings] if config.tie_word_embeddings else None
        if not config.tie_word_embeddings:
            self.weight = self.create_parameter([config.vocab_size, config.d_model])
        self.bias = self.create_parameter([config.vocab_size], is_bias=True)

    def projection(self) -> Tensor:
        return self._tied_embeddings[0].weight if self._tied_embeddings else self.weight

    def forward(self, hidden: Tensor) -> Tensor:
        return paddle.matmul(hidden, self.projection(), transpose_y=True) + self.bias


# ------------------------------------------------------------------------------------------------- models
class FunnelForPreTraining(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.funnel = FunnelModel(config)
        self.discriminator_predictions = FunnelDiscriminatorPredictions(config)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = _body_outputs(self.funnel, input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_attentions, output_hidden_states)
        logits = self.discriminator_predictions(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = replaced_token_loss(logits, as_tensor(labels), as_tensor(attention_mask))
        result = FunnelForPreTrainingOutput(loss, logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)


class FunnelForMaskedLM(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.funnel = FunnelModel(config)
        self.lm_head = FunnelLMHead(config, self.funnel.embeddings.word_embeddings)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = _body_outputs(self.funnel, input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_attentions, output_hidden_states)
        logits = self.lm_head(out.last_hidden_state)
        loss = None if labels is None else token_classification_loss(logits, as_tensor(labels))
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class FunnelForSequenceClassification(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.funnel = FunnelBaseModel(config)
        self.classifier = FunnelClassificationHead(config, config.num_labels)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = _body_outputs(self.funnel, input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_attentions, output_hidden_states, first_token_only=True)
        logits = self.classifier(out.last_hidden_state[:, 0])
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, as_tensor(labels), self.num_labels, self.config.problem_type)
        result = SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)


class FunnelForMultipleChoice(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.funnel = FunnelBaseModel(config)
        self.classifier = FunnelClassificationHead(config, 1)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        """Inputs are [batch, num_choices, seq_len]; every choice is encoded on its own and scored."""
        input_ids, attention_mask, token_type_ids = (
            as_tensor(input_ids, "int64"), as_tensor(attention_mask), as_tensor(token_type_ids, "int64"))
        inputs_embeds = as_tensor(inputs_embeds)
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            raise InputError("pass input_ids or inputs_embeds")
        num_choices = dim(reference, 1)

        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.flatten(0, 1)  # [B, C, ...] -> [B*C, ...]

        out = _body_outputs(self.funnel, flat(input_ids), flat(attention_mask), flat(token_type_ids),
                            flat(inputs_embeds), output_attentions, output_hidden_states, first_token_only=True)
        logits = self.classifier(out.last_hidden_state[:, 0]).reshape([-1, num_choices])
        loss = None
        if labels is not None:
            loss = multiple_choice_loss(logits, as_tensor(labels))
        result = MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)


class FunnelForTokenClassification(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.funnel = FunnelModel(config)
        self.dropout = Dropout(config.hidden_dropout)
        self.classifier = Linear(config.d_model, config.num_labels)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = _body_outputs(self.funnel, input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else token_classification_loss(logits, as_tensor(labels))
        result = TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)


class FunnelForQuestionAnswering(FunnelPreTrainedModel):
    def __init__(self, config: FunnelConfig) -> None:
        if config.num_labels != 2:
            raise InputError(
                f"FunnelForQuestionAnswering needs config.num_labels == 2 (start and end logits), "
                f"got {config.num_labels}"
            )
        super().__init__(config)
        self.num_labels = config.num_labels
        self.funnel = FunnelModel(config)
        self.qa_outputs = Linear(config.d_model, config.num_labels)
        self._post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = _body_outputs(self.funnel, input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_attentions, output_hidden_states)
        logits = self.qa_outputs(out.last_hidden_state)
        start_logits, end_logits = logits[:, :, 0].contiguous(), logits[:, :, 1].contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, as_tensor(start_positions), as_tensor(end_positions))
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)
