"""AdamW with linear warmup then linear / cosine / constant decay; no weight decay on biases and LayerNorm."""

from __future__ import annotations

import math

import paddle
import paddle.nn as nn

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


def build_optimizer(model: nn.Layer, args: TrainingArguments,
                    total_steps: int) -> tuple[paddle.optimizer.AdamW, paddle.optimizer.lr.LambdaDecay]:
    """The optimizer and its learning-rate scheduler (stepped once per optimizer step)."""
    warmup = args.warmup_steps or int(args.warmup_ratio * total_steps)
    scheduler = paddle.optimizer.lr.LambdaDecay(
        args.learning_rate, lambda step: lr_factor(step, warmup, total_steps, args.lr_schedule))
    skip = no_decay_names(model)
    optimizer = paddle.optimizer.AdamW(
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
