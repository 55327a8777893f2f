"""AdamW with linear warmup then linear / cosine / constant decay; no weight decay on biases and LayerNorm;
optional layer-wise learning-rate decay for the Funnel encoder.

Layer-wise decay (`TrainingArguments.layer_decay`, the authors' `--lr_layer_decay_rate`): lower layers of a
pretrained encoder hold more general features, so fine-tuning moves them less. With decay d and an encoder of
L = sum(block_sizes) layers (counted in order over the blocks, 1-based), encoder layer i trains at
`lr * d ** (L - i)` and the embeddings at `lr * d ** L`; a block repeat reuses its layer's parameters and so its
rate. Decoder layers, task heads and anything else train at the full `lr`.

What the authors do (laiguokun/Funnel-Transformer, tensorflow/optimization.py, `compute_gradients`, used by
tensorflow/scripts/tpu_squad.sh with 0.75; the RACE instructions in tensorflow/README.md do not set it):
- ids: `model/input` (embeddings) -> 0, `model/(encoder|decoder)/layer_k` -> k + 1, where decoder layers continue
  the encoder's numbering; multiplier `d ** (n_layer - 1 - id)` with n_layer = 1 + highest id. So for a model
  WITH a decoder (their SQuAD head) the decoder's layers are counted too: the top decoder layer gets 1 and every
  encoder layer an extra `d ** num_decoder_layers`. Here decoder layers get the full rate, as the issue asks, so
  encoder rates do not depend on whether a decoder is attached. For the encoder-only bodies the two agree.
- they multiply the clipped GRADIENT by the factor, not the learning rate. With Adam that mostly cancels
  (m / sqrt(v) is invariant to a constant gradient scale; only epsilon feels it), so their setting acts much more
  weakly than its name says. Here the factor scales the learning rate (what ELECTRA and HuggingFace-style
  implementations do), so weight decay, which Paddle's AdamW multiplies by the parameter's rate, is scaled too.
- relative-position parameters (r_w_bias, r_r_bias, r_kernel, r_s_bias, seg_embed) live inside each layer's
  attention in both code bases, so they take their layer's rate; their `upsampling_layer` has no parameters.

Implementation: Paddle's `lr_ratio` argument of AdamW is not implemented on CPU, and parameter groups would make
global-norm gradient clipping per group; so each parameter's rate multiplier is set as Paddle's per-parameter
learning rate (`param.optimize_attr["learning_rate"]`, what `ParamAttr(learning_rate=...)` sets), which the
optimizer multiplies with the scheduled rate at each step. Building an optimizer therefore (re)sets that
multiplier on every parameter of the model.
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import InputError
from ..modeling import cpu_kernels
from ..modeling.embeddings import FunnelEmbeddings
from ..modeling.encoder import FunnelEncoder
from .arguments import TrainingArguments


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def no_decay_names(model: nn.Layer) -> set[str]:
    """Biases and LayerNorm parameters are not decayed (Paddle identifies parameters by `param.name`)."""
    skip = set()
    for _, layer in model.named_sublayers(include_self=True):
        for param_name, param in layer.named_parameters(include_sublayers=False):
            if isinstance(layer, nn.LayerNorm) or param_name.endswith("bias"):
                skip.add(param.name)
    return skip


def layer_lr_multipliers(model: nn.Layer, decay: float) -> dict[str, float]:
    """Learning-rate multiplier of every parameter (by `param.name`) under layer-wise decay `decay`.

    The rule and how it compares with the authors' code are in the module docstring. A model without a Funnel
    encoder, or `decay == 1`, gets 1.0 everywhere; a model holding several encoders is refused (which one's depth
    would the embeddings follow?)."""
    multipliers = {param.name: 1.0 for param in model.parameters()}
    if decay == 1.0:
        return multipliers
    encoders = [layer for layer in model.sublayers(include_self=True) if isinstance(layer, FunnelEncoder)]
    if len(encoders) > 1:
        raise InputError(f"layer-wise learning-rate decay needs one Funnel encoder; this model has {len(encoders)}")
    if not encoders:
        return multipliers
    layers = [layer for block in encoders[0].blocks for layer in block]
    depth = len(layers)
    for index, layer in enumerate(layers, start=1):
        for param in layer.parameters():
            multipliers[param.name] = decay ** (depth - index)
    for embeddings in (layer for layer in model.sublayers(include_self=True) if isinstance(layer, FunnelEmbeddings)):
        for param in embeddings.parameters():  # a tied LM head shares this weight, hence this rate
            multipliers[param.name] = decay**depth
    return multipliers


def _set_lr_multipliers(model: nn.Layer, multipliers: dict[str, float]) -> None:
    """Paddle's per-parameter learning rate: the optimizer scales its scheduled rate by it at every step."""
    for param in model.parameters():
        param.optimize_attr["learning_rate"] = multipliers[param.name]


class AdamW(paddle.optimizer.AdamW):
    """`paddle.optimizer.AdamW` (same arguments, accumulators and state_dict) whose update of float32 parameters on
    the CPU runs as one multi-threaded pass over all of them (`cpu_kernels.adamw_update`, Paddle's arithmetic
    element for element).

    Why: Paddle's CPU `adamw_` took 0.10 s of a 1.9 s small-base training step (8 x 128, 115M parameters) while
    the same reads and writes in one pass on both cores take about 0.06 s (RESULTS.md "Training step"). Anything
    the kernel does not cover (other dtypes or devices, static graphs, parameter groups, amsgrad, `lr_ratio`,
    sparse gradients, tensor betas, or the kernels not built) goes through Paddle's own update.

    How: Paddle's step visits the parameters one by one (`_append_optimize_op`); those the kernel takes are
    collected with their rates and updated together when it has visited them all (`_finish_update`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_updates: list[tuple] = []  # this step's parameters for the kernel, collected until it ends
        self._step_rate: float | None = None  # this step's scheduled rate, read once

    def _fast_update_applies(self, param_and_grad) -> bool:
        if not isinstance(param_and_grad, (tuple, list)) or not paddle.in_dynamic_mode():
            return False
        param, grad = param_and_grad
        return (not self._amsgrad and self._lr_ratio is None and not getattr(grad, "is_selected_rows", bool)()
                and all(isinstance(v, float) for v in (self._beta1, self._beta2, self._epsilon, self._weight_decay))
                and cpu_kernels.applies(param, grad))

    def _param_learning_rate(self, param) -> float:
        """The rate Paddle's `_create_param_lr` gives this parameter (the scheduled rate times the parameter's
        multiplier, rounded as float32 arithmetic rounds it; a tensor multiplier is the rate itself), without
        creating a tensor per parameter."""
        attr = getattr(param, "optimize_attr", None)
        multiplier = attr["learning_rate"] if attr is not None and "learning_rate" in attr else 1.0
        if isinstance(multiplier, (paddle.Tensor, paddle.pir.Value)):
            return float(multiplier)
        if self._step_rate is None:
            self._step_rate = float(self._global_learning_rate())
        if multiplier == 1.0:
            return self._step_rate
        return float(np.float32(self._step_rate) * np.float32(multiplier))

    def _create_optimization_pass(self, parameters_and_grads, *args, **kwargs):
        self._pending_updates, self._step_rate = [], None
        return super()._create_optimization_pass(parameters_and_grads, *args, **kwargs)

    def _append_optimize_op(self, block, param_and_grad):
        if not self._fast_update_applies(param_and_grad):
            return super()._append_optimize_op(block, param_and_grad)
        param, grad = param_and_grad
        # A float32 CPU parameter's accumulators are float32 CPU tensors too (moments in its dtype, even with
        # use_lowprecision_moment; the [1] bias-correction powers float32 on the CPU), which the kernel writes.
        accumulators = [self._get_accumulator_master(name, param) for name in (
            self._moment1_acc_str, self._moment2_acc_str, self._beta1_pow_acc_str, self._beta2_pow_acc_str)]
        learning_rate = self._param_learning_rate(param)
        decayed = self._apply_decay_param_fun is None or self._apply_decay_param_fun(param.name)
        # Paddle's kernel subtracts (lr * coeff) * p, with lr * coeff rounded to float32 first
        decay = float(np.float32(learning_rate) * np.float32(self._weight_decay)) if decayed else 0.0
        self._pending_updates.append((param, grad, *accumulators, learning_rate, decay))
        return None

    def _finish_update(self, block, parameters_and_grads):
        pending, self._pending_updates = self._pending_updates, []
        if pending:
            cpu_kernels.adamw_update(pending, self._beta1, self._beta2, self._epsilon)
        return super()._finish_update(block, parameters_and_grads)


def build_optimizer(model: nn.Layer, args: TrainingArguments,
                    total_steps: int) -> tuple[paddle.optimizer.AdamW, paddle.optimizer.lr.LambdaDecay]:
    """The optimizer and its learning-rate scheduler (stepped once per optimizer step)."""
    warmup = args.warmup_steps or int(args.warmup_ratio * total_steps)
    scheduler = paddle.optimizer.lr.LambdaDecay(
        args.learning_rate, lambda step: lr_factor(step, warmup, total_steps, args.lr_schedule))
    skip = no_decay_names(model)
    _set_lr_multipliers(model, layer_lr_multipliers(model, args.layer_decay))
    optimizer = AdamW(
        learning_rate=scheduler,
        parameters=model.parameters(),
        beta1=args.adam_beta1,
        beta2=args.adam_beta2,
        epsilon=args.adam_epsilon,
        weight_decay=args.weight_decay,
        apply_decay_param_fun=lambda name: name not in skip,
        grad_clip=nn.ClipGradByGlobalNorm(args.max_grad_norm) if args.max_grad_norm > 0 else None,
    )
    return optimizer, scheduler
