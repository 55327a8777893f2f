"""The pretraining objectives as layers the Trainer can train: masked language modelling (MLM) and ELECTRA's
replaced-token detection with a small generator that shares the discriminator's embeddings.

Each takes a batch masked by `masking.py` (corrupted `input_ids`, `original_ids`, `is_target`, and for ELECTRA
`sample_uniform`) and returns the loss, per-step scalars for the log (`log_scalars`), and per-example sums
(`STAT_KEYS`) from which evaluation computes token-level means over a whole split.

ELECTRA follows the authors' `electra_loss_func` (laiguokun/Funnel-Transformer, tensorflow/pretrain.py): the
generator predicts the masked positions (mean cross-entropy over them); each masked position is replaced by a
token sampled from the generator's distribution (no gradient through the sample); the discriminator labels a token
1 ("replaced") where the sampled token differs from the original (a sample equal to the original counts as
original); loss = generator loss + disc_weight x mean BCE over real (non-pad) tokens. The authors sample with the
Gumbel-max trick; here one uniform number per position is looked up in the generator's cumulative distribution
(inverse-CDF sampling, the same distribution), because that number can come from the example's own generator.

Embedding sharing: the authors' generator and discriminator share the whole input embedding (word table and its
LayerNorm), and the generator's MLM output uses that word table. Funnel's embeddings map the vocabulary straight to
d_model with no projection (in `transformers` too), so sharing needs the same d_model: the generator keeps d_model
and shrinks the width inside each layer (n_head and d_inner x `generator_size`; d_head is independent of d_model).
The authors shrink d_model, d_inner and n_head by `width_shrink` = 0.25 and add an embedding projection, which
a `transformers` FunnelForMaskedLM has no place for.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..checkpoint import PADDLE_LAYOUT, write_safetensors
from ..config import FunnelConfig
from ..errors import InputError
from ..modeling import FunnelForMaskedLM, FunnelForPreTraining
from ..modeling.outputs import ModelOutput
from ..registry import SAFE_WEIGHTS_FILE

logger = logging.getLogger("paddlefunnel")

Tensor = paddle.Tensor
ELECTRA, MLM = "electra", "mlm"
OBJECTIVES = (ELECTRA, MLM)
DEFAULT_GENERATOR_SIZE = 0.25  # authors' width_shrink
DEFAULT_DISC_WEIGHT = 50.0  # authors' disc_coeff
SETTINGS_FILE = "pretraining.json"  # beside the combined weights in a pretraining checkpoint
# Per-example sums returned for evaluation; means over a split are ratios of their totals.
MLM_STAT_KEYS = ("gen_loss_sum", "gen_correct", "n_masked")
STAT_KEYS = {MLM: MLM_STAT_KEYS, ELECTRA: MLM_STAT_KEYS + ("disc_loss_sum", "disc_correct", "n_real", "n_replaced")}


@dataclass
class PretrainingOutput(ModelOutput):
    loss: Optional[Tensor] = None
    log_scalars: Optional[dict[str, Tensor]] = None  # the Trainer adds these to each step's log record
    gen_loss_sum: Optional[Tensor] = None
    gen_correct: Optional[Tensor] = None
    n_masked: Optional[Tensor] = None
    disc_loss_sum: Optional[Tensor] = None
    disc_correct: Optional[Tensor] = None
    n_real: Optional[Tensor] = None
    n_replaced: Optional[Tensor] = None


# ------------------------------------------------------------------------------------------ configurations
def generator_config(discriminator: FunnelConfig, size: float = DEFAULT_GENERATOR_SIZE) -> FunnelConfig:
    """The discriminator's config with n_head and d_inner scaled by `size` (d_model kept: see the module doc)."""
    if size <= 0:
        raise InputError(f"--generator-size must be positive, got {size}")
    config = discriminator.copy()
    config.update({"n_head": max(1, round(discriminator.n_head * size)),
                   "d_inner": max(1, round(discriminator.d_inner * size))})
    return config


def check_generator_config(generator: FunnelConfig, discriminator: FunnelConfig) -> None:
    """The generator must share the embeddings (same d_model); one larger than the discriminator gets a warning
    (ELECTRA found generators of 1/4-1/2 the discriminator's size work best; a stronger one makes the task too
    hard for the discriminator)."""
    if generator.d_model != discriminator.d_model:
        raise InputError(f"the generator's d_model ({generator.d_model}) must equal the discriminator's "
                         f"({discriminator.d_model}): they share the word embeddings, which map straight to d_model")
    sizes = {"attention width n_head*d_head": (generator.n_head * generator.d_head,
                                                discriminator.n_head * discriminator.d_head),
             "d_inner": (generator.d_inner, discriminator.d_inner),
             "layers": (sum(generator.block_sizes) + generator.num_decoder_layers,
                        sum(discriminator.block_sizes) + discriminator.num_decoder_layers)}
    larger = [f"{name} {g} > {d}" for name, (g, d) in sizes.items() if g > d]
    if larger:
        logger.warning("the generator is larger than the discriminator (%s); ELECTRA works best with a generator "
                       "1/4 to 1/2 the discriminator's size", ", ".join(larger))


# ------------------------------------------------------------------------------------------------- pieces
def _masked_positions(is_target: Tensor) -> Tensor:
    """Flat indices [N] of the positions to predict."""
    return paddle.nonzero(is_target.reshape([-1]).astype("bool")).reshape([-1])


def _per_example(values: Tensor, flat_positions: Tensor, shape: list[int]) -> Tensor:
    """Per-position values [N] summed per example [batch] (the positions are flat indices into `shape`)."""
    grid = paddle.zeros([shape[0] * shape[1]], dtype=values.dtype)
    return grid.scatter(flat_positions, values).reshape(shape).sum(axis=1)


def masked_lm_predictions(model: FunnelForMaskedLM, input_ids: Tensor, attention_mask: Tensor,
                          token_type_ids: Tensor, flat_positions: Tensor) -> Tensor:
    """Vocabulary logits [N, vocab] at the masked positions only (the LM head on N rows, not on every token)."""
    hidden = model.funnel(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          return_dict=True).last_hidden_state
    rows = paddle.gather(hidden.reshape([-1, hidden.shape[-1]]), flat_positions)
    return model.lm_head(rows)


def sample_tokens(logits: Tensor, uniform: Tensor) -> Tensor:
    """One token per row of `logits` from softmax(logits), by looking `uniform` (in [0, 1)) up in the cumulative
    distribution; no gradient flows through the sample."""
    with paddle.no_grad():
        cumulative = paddle.cumsum(F.softmax(logits.detach().astype("float32"), axis=-1), axis=-1)
        below = (cumulative < uniform.unsqueeze(-1)).astype("int64").sum(axis=-1)
        return paddle.clip(below, max=logits.shape[-1] - 1)


def _generator_step(model: FunnelForMaskedLM, input_ids, original_ids, is_target, attention_mask, token_type_ids):
    """Masked positions, their logits, their targets and the per-position cross-entropy."""
    positions = _masked_positions(is_target)
    logits = masked_lm_predictions(model, input_ids, attention_mask, token_type_ids, positions)
    targets = paddle.gather(original_ids.reshape([-1]), positions)
    losses = F.cross_entropy(logits.astype("float32"), targets, reduction="none").reshape([-1])
    return positions, logits, targets, losses


def share_embeddings(generator: FunnelForMaskedLM, discriminator: FunnelForPreTraining) -> None:
    """Make the generator use the discriminator's embedding layer (word table and LayerNorm), in its input and,
    when tied, its output projection."""
    embeddings = discriminator.funnel.embeddings
    generator.funnel.embeddings = embeddings
    if generator.lm_head._tied_embeddings is not None:
        generator.lm_head._tied_embeddings = [embeddings.word_embeddings]


class _PretrainingModel(nn.Layer):
    """What both objectives share: a checkpoint holding all their weights, for the Trainer's resume."""

    objective = ""

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def gradient_checkpointing_enable(self) -> None:
        """--recompute: in every Funnel model of the objective."""
        for layer in self.children():
            layer.gradient_checkpointing_enable()

    def save_pretrained(self, directory) -> None:
        """The Trainer's checkpoint format for this wrapper: every weight in one file (Paddle layout) and the
        settings (configs, objective) in `SETTINGS_FILE`. The shareable model directories are written separately
        (run.py); this one exists so that `--resume` can restore the whole state."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_safetensors({k: v.numpy() for k, v in self.state_dict().items()}, directory / SAFE_WEIGHTS_FILE,
                          PADDLE_LAYOUT)
        (directory / SETTINGS_FILE).write_text(json.dumps(self.settings(), indent=2) + "\n", encoding="utf-8")


class ElectraPretrainingModel(_PretrainingModel):
    """Generator (MLM) + discriminator (replaced-token detection), trained jointly (see the module docstring)."""

    objective = ELECTRA

    def __init__(self, discriminator: FunnelForPreTraining, generator: FunnelForMaskedLM,
                 disc_weight: float = DEFAULT_DISC_WEIGHT) -> None:
        super().__init__()
        if disc_weight <= 0:
            raise InputError(f"--disc-weight must be positive, got {disc_weight}")
        check_generator_config(generator.config, discriminator.config)
        self.discriminator = discriminator
        self.generator = generator
        self.disc_weight = float(disc_weight)
        share_embeddings(generator, discriminator)

    def settings(self) -> dict[str, Any]:
        return {"objective": self.objective, "disc_weight": self.disc_weight,
                "discriminator_config": self.discriminator.config.to_dict(),
                "generator_config": self.generator.config.to_dict()}

    def forward(self, input_ids, original_ids, is_target, sample_uniform, attention_mask=None, token_type_ids=None):
        attention_mask = paddle.ones_like(input_ids) if attention_mask is None else attention_mask
        shape = list(input_ids.shape)
        positions, gen_logits, targets, gen_losses = _generator_step(
            self.generator, input_ids, original_ids, is_target, attention_mask, token_type_ids)
        gen_loss = gen_losses.mean()
        sampled = sample_tokens(gen_logits, paddle.gather(sample_uniform.reshape([-1]), positions))
        disc_ids = original_ids.reshape([-1]).scatter(positions, sampled).reshape(shape)
        replaced = (disc_ids != original_ids).astype("float32")
        real = attention_mask.astype("float32")
        disc_logits = self.discriminator(disc_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                         return_dict=True).logits.astype("float32")
        disc_losses = F.binary_cross_entropy_with_logits(disc_logits, replaced, reduction="none") * real
        disc_loss = disc_losses.sum() / real.sum()
        with paddle.no_grad():
            gen_hits = (gen_logits.argmax(axis=-1) == targets).astype("float32")
            disc_hits = ((disc_logits > 0).astype("float32") == replaced).astype("float32") * real
            stats = {"gen_loss_sum": _per_example(gen_losses.detach(), positions, shape),
                     "gen_correct": _per_example(gen_hits, positions, shape),
                     "n_masked": is_target.astype("float32").sum(axis=1),
                     "disc_loss_sum": disc_losses.detach().sum(axis=1), "disc_correct": disc_hits.sum(axis=1),
                     "n_real": real.sum(axis=1), "n_replaced": (replaced * real).sum(axis=1)}
            scalars = {"gen_loss": gen_loss.detach(), "gen_acc": gen_hits.mean(), "disc_loss": disc_loss.detach(),
                       "disc_acc": disc_hits.sum() / real.sum(),
                       "replaced_frac": stats["n_replaced"].sum() / real.sum()}
        return PretrainingOutput(gen_loss + self.disc_weight * disc_loss, scalars, **stats)


class MaskedLMPretrainingModel(_PretrainingModel):
    """Masked language modelling: cross-entropy over the masked positions (mean over them)."""

    objective = MLM

    def __init__(self, model: FunnelForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def settings(self) -> dict[str, Any]:
        return {"objective": self.objective, "config": self.model.config.to_dict()}

    def forward(self, input_ids, original_ids, is_target, attention_mask=None, token_type_ids=None):
        attention_mask = paddle.ones_like(input_ids) if attention_mask is None else attention_mask
        shape = list(input_ids.shape)
        positions, logits, targets, losses = _generator_step(
            self.model, input_ids, original_ids, is_target, attention_mask, token_type_ids)
        loss = losses.mean()
        with paddle.no_grad():
            hits = (logits.argmax(axis=-1) == targets).astype("float32")
            stats = {"gen_loss_sum": _per_example(losses.detach(), positions, shape),
                     "gen_correct": _per_example(hits, positions, shape),
                     "n_masked": is_target.astype("float32").sum(axis=1)}
            scalars = {"mlm_acc": hits.mean()}
        return PretrainingOutput(loss, scalars, **stats)


def evaluation_metrics(stats: dict[str, Any], objective: str, disc_weight: float = DEFAULT_DISC_WEIGHT
                       ) -> dict[str, float]:
    """Token-level means over a split from the per-example sums (`STAT_KEYS`) of every example."""
    total = {k: float(stats[k].sum()) for k in stats}
    masked = max(total["n_masked"], 1.0)
    gen_loss, gen_acc = total["gen_loss_sum"] / masked, total["gen_correct"] / masked
    if objective == MLM:
        return {"loss": gen_loss, "mlm_loss": gen_loss, "mlm_acc": gen_acc, "masked_tokens": total["n_masked"]}
    real = max(total["n_real"], 1.0)
    disc_loss = total["disc_loss_sum"] / real
    replaced = total["n_replaced"] / real
    return {"loss": gen_loss + disc_weight * disc_loss, "gen_loss": gen_loss, "gen_acc": gen_acc,
            "disc_loss": disc_loss, "disc_acc": total["disc_correct"] / real, "replaced_frac": replaced,
            "disc_acc_all_original": 1.0 - replaced}
