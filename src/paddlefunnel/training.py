"""Fine-tuning engine: AdamW + warmup/decay, accumulation, clipping, evaluation, best checkpoint, exact resume,
multi-process data parallel (`python -m paddle.distributed.launch`), AMP on GPU.

Determinism: the data order of epoch e is a permutation seeded by (seed, e), and dropout is reseeded from
(seed, step, rank) before every optimizer step, so an interrupted run resumed from its last checkpoint ends
with the same weights as an uninterrupted one, without saving generator states.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist
import paddle.nn as nn

from .io_utils import atomic_directory, read_json_object

logger = logging.getLogger("paddlefunnel")

CHECKPOINT_DIR = "checkpoint-last"
BEST_DIR = "best"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
LOG_FILE = "log.jsonl"


class NonFiniteLossError(RuntimeError):
    """Training diverged; the last good checkpoint on disk is left untouched."""


@dataclass
class TrainingArguments:
    output_dir: str = "runs/out"
    learning_rate: float = 2e-5
    per_device_batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    num_epochs: float = 3.0
    max_steps: int = 0  # > 0 overrides num_epochs
    warmup_ratio: float = 0.1
    warmup_steps: int = 0  # > 0 overrides warmup_ratio
    lr_schedule: str = "linear"  # linear | cosine | constant
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 10
    eval_steps: int = 0  # 0: evaluate at each epoch end only
    save_steps: int = 0  # 0: checkpoint whenever evaluating, and at the end
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = never
    amp: str = "none"  # none | fp16 | bf16 (GPU only)
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "learning_rate": self.learning_rate > 0,
            "per_device_batch_size": self.per_device_batch_size > 0,
            "eval_batch_size": self.eval_batch_size > 0,
            "gradient_accumulation_steps": self.gradient_accumulation_steps > 0,
            "num_epochs": self.num_epochs > 0 or self.max_steps > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "lr_schedule": self.lr_schedule in ("linear", "cosine", "constant"),
            "amp": self.amp in ("none", "fp16", "bf16"),
            "max_grad_norm": self.max_grad_norm >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training arguments: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @classmethod
    def from_recipe(cls, path: str | os.PathLike, section: str | None = None, **overrides: Any) -> "TrainingArguments":
        """Hyperparameters from a JSON recipe file (optionally one named section of it), then overrides."""
        path = Path(path)
        recipe = read_json_object(path, "recipe file")
        values = recipe.get(section, None) if section else recipe
        if values is None:
            raise ValueError(f"{path}: no section {section!r}; available: {sorted(k for k in recipe if not k.startswith('_'))}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if not k.startswith("_")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown training arguments {unknown}; known: {sorted(known)}")
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


# ----------------------------------------------------------------------------------------- distributed
def world() -> tuple[int, int]:
    """(rank, world size); a plain single process is (0, 1)."""
    if dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by `paddle.distributed.launch`; no-op otherwise."""
    if int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    return world()


# ---------------------------------------------------------------------------------------- data feeding
class ArrayDataset(paddle.io.Dataset):
    """Pre-tokenised features: equal-length numpy arrays keyed by model argument name."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"feature arrays differ in length: {lengths}")
        if not lengths or next(iter(lengths.values())) == 0:
            raise ValueError("no features: the data split is empty")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in self.arrays.items()}

    def batch(self, indices: Sequence[int]) -> dict[str, paddle.Tensor]:
        return {k: paddle.to_tensor(v[np.asarray(indices)]) for k, v in self.arrays.items()}


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


class ResumableBatchSampler(paddle.io.BatchSampler):
    """Global batches in a seeded per-epoch order, this rank's share of each, from a given batch onward."""

    def __init__(self, num_examples: int, global_batch_size: int, seed: int, epoch: int = 0, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if global_batch_size % world_size:
            raise ValueError(f"global batch {global_batch_size} is not divisible by {world_size} processes")
        self.num_examples, self.global_batch_size = num_examples, global_batch_size
        self.seed, self.epoch, self.start_batch, self.rank, self.world_size = seed, epoch, start_batch, rank, world_size

    def __len__(self) -> int:
        return max(0, math.ceil(self.num_examples / self.global_batch_size) - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.num_examples, self.seed, self.epoch)
        for start in range(self.start_batch * self.global_batch_size, self.num_examples, self.global_batch_size):
            global_batch = order[start : start + self.global_batch_size]
            yield [int(i) for i in np.array_split(global_batch, self.world_size)[self.rank]]


# ---------------------------------------------------------------------------------------- optimisation
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
    for layer_name, layer in model.named_sublayers(include_self=True):
        for param_name, param in layer.named_parameters(include_sublayers=False):
            if isinstance(layer, nn.LayerNorm) or param_name.endswith("bias"):
                skip.add(param.name)
    return skip


def build_optimizer(model: nn.Layer, args: TrainingArguments, total_steps: int):
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


def _structured_optimizer_state(optimizer, model: nn.Layer) -> dict[str, np.ndarray]:
    """Optimizer tensors keyed by structured parameter names, which stay stable across processes."""
    by_internal = {p.name: name for name, p in model.named_parameters()}
    out = {}
    for key, value in optimizer.state_dict().items():
        if not isinstance(value, paddle.Tensor):
            continue
        internal = max((n for n in by_internal if key.startswith(n + "_")), key=len, default=None)
        if internal is None:
            raise KeyError(f"optimizer state {key!r} belongs to no model parameter")
        out[f"{by_internal[internal]}::{key[len(internal) + 1:]}"] = value.numpy()
    return out


def _restore_optimizer_state(optimizer, model: nn.Layer, tensors: dict[str, np.ndarray], scheduler_state: dict) -> None:
    internal = {name: p.name for name, p in model.named_parameters()}
    state: dict[str, Any] = {}
    for key, value in tensors.items():
        structured, suffix = key.split("::", 1)
        if structured not in internal:
            raise KeyError(f"checkpoint optimizer state for unknown parameter {structured!r}")
        state[f"{internal[structured]}_{suffix}"] = paddle.to_tensor(value)
    state["LR_Scheduler"] = scheduler_state
    optimizer.set_state_dict(state)


# --------------------------------------------------------------------------------------------- trainer
@dataclass
class TrainerState:
    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # optimizer steps already taken in `epoch`
    best_metric: float | None = None
    best_step: int = -1
    evaluations_without_improvement: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainResult:
    global_step: int
    best_metric: float | None
    best_step: int
    final_metrics: dict[str, float]
    stopped_early: bool
    log_file: Path


MetricsFn = Callable[[dict[str, np.ndarray]], dict[str, float]]


class Trainer:
    """Trains `model` on `train_data`, evaluating on `eval_data` with `compute_metrics(predictions)`.

    `compute_metrics` receives every prediction array (e.g. "logits", or "start_logits"/"end_logits")
    for the whole evaluation set in order, gathered from all processes, and returns a dict of metrics
    containing `main_metric` (higher is better unless `greater_is_better=False`).
    """

    def __init__(
        self,
        model: nn.Layer,
        args: TrainingArguments,
        train_data: ArrayDataset | None = None,
        eval_data: ArrayDataset | None = None,
        compute_metrics: MetricsFn | None = None,
        main_metric: str = "loss",
        greater_is_better: bool = True,
        prediction_keys: Sequence[str] = ("logits",),
        save_extra: Callable[[Path], None] | None = None,
    ) -> None:
        self.args = args
        self.rank, self.world_size = init_distributed()
        self.model = model
        self.train_data, self.eval_data = train_data, eval_data
        self.compute_metrics = compute_metrics
        self.main_metric, self.greater_is_better = main_metric, greater_is_better
        self.prediction_keys = tuple(prediction_keys)
        self.save_extra = save_extra
        self.out = Path(args.output_dir)
        self.state = TrainerState()
        self.use_gpu = paddle.device.get_device().startswith("gpu")
        if args.amp != "none" and not self.use_gpu:
            logger.warning("AMP (%s) needs a GPU; this device is %s, so training runs in fp32",
                           args.amp, paddle.device.get_device())
            print(f"note: --amp {args.amp} needs a GPU; running fp32 on {paddle.device.get_device()}")
        self.amp = args.amp if self.use_gpu else "none"
        self.train_model = paddle.DataParallel(model) if self.world_size > 1 else model

    # ------------------------------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def global_batch_size(self) -> int:
        return self.args.per_device_batch_size * self.world_size

    def steps_per_epoch(self) -> int:
        batches = math.ceil(len(self.train_data) / self.global_batch_size())
        return max(1, batches // self.args.gradient_accumulation_steps)

    def total_steps(self) -> int:
        if self.args.max_steps > 0:
            return self.args.max_steps
        return max(1, int(math.ceil(self.args.num_epochs * self.steps_per_epoch())))

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        self.state.history.append(record)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._visualdl is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time", "epoch"):
                    self._visualdl.add_scalar(f"{record['event']}/{key}", value, record.get("step", 0))

    def _open_visualdl(self):
        if not self.is_main:
            return None
        try:
            from visualdl import LogWriter
        except ImportError:
            return None
        return LogWriter(logdir=str(self.out / "visualdl"))

    # ------------------------------------------------------------------------------------ training
    def train(self) -> TrainResult:
        if self.train_data is None:
            raise ValueError("Trainer.train needs train_data")
        args = self.args
        total = self.total_steps()
        self.optimizer, self.scheduler = build_optimizer(self.model, args, total)
        scaler = paddle.amp.GradScaler() if self.amp == "fp16" else None
        if args.resume:
            self._resume()
        elif self.is_main and (self.out / LOG_FILE).exists():
            (self.out / LOG_FILE).unlink()
        self._visualdl = self._open_visualdl()
        steps_per_epoch = self.steps_per_epoch()
        accumulation = args.gradient_accumulation_steps
        progress = self._progress_bar(total)
        stopped_early = False
        final_metrics: dict[str, float] = {}
        self.model.train()
        while self.state.global_step < total and not stopped_early:
            sampler = ResumableBatchSampler(
                len(self.train_data), self.global_batch_size(), args.seed, self.state.epoch,
                self.state.batch_in_epoch * accumulation, self.rank, self.world_size)
            batches = iter(sampler)
            while self.state.batch_in_epoch < steps_per_epoch and self.state.global_step < total:
                micro_batches = [next(batches, None) for _ in range(accumulation)]
                micro_batches = [b for b in micro_batches if b]
                if not micro_batches:
                    break
                loss = self._optimizer_step(micro_batches, scaler)
                self.state.global_step += 1
                self.state.batch_in_epoch += 1
                step = self.state.global_step
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"loss became {loss} at step {step}; stopping. The last good checkpoint "
                        f"({self.out / CHECKPOINT_DIR}, if any) is left as it was")
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{self.scheduler.get_lr():.2e}", refresh=False)
                if step % args.logging_steps == 0 or step == total:
                    self._log({"event": "train", "step": step, "epoch": self.state.epoch, "loss": loss,
                               "lr": self.scheduler.get_lr()})
                epoch_done = self.state.batch_in_epoch >= steps_per_epoch
                if epoch_done:
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                evaluate_now = self.eval_data is not None and (
                    (args.eval_steps and step % args.eval_steps == 0) or epoch_done or step == total)
                if evaluate_now:
                    final_metrics = self._evaluate_and_track()
                    stopped_early = bool(args.early_stopping_patience and
                                         self.state.evaluations_without_improvement >= args.early_stopping_patience)
                if (args.save_steps and step % args.save_steps == 0) or evaluate_now or step == total or stopped_early:
                    self._save_checkpoint()
                if stopped_early:
                    self._log({"event": "early_stop", "step": step, "best_step": self.state.best_step})
                    break
                if epoch_done:
                    break
        if progress is not None:
            progress.close()
        if self._visualdl is not None:
            self._visualdl.close()
        if self.eval_data is None and self.is_main:
            self._save_model(self.out / BEST_DIR)  # nothing to select by: the final model is the result
        return TrainResult(self.state.global_step, self.state.best_metric, self.state.best_step, final_metrics,
                           stopped_early, self.out / LOG_FILE)

    def _progress_bar(self, total: int):
        if not (self.args.progress and self.is_main):
            return None
        import sys

        from tqdm.auto import tqdm

        # On a terminal the bar redraws in place; in a log file every redraw is a line, so redraw rarely there.
        interval = 0.2 if sys.stderr.isatty() else 30.0
        return tqdm(total=total, initial=self.state.global_step, desc="train", unit="step", dynamic_ncols=True,
                    mininterval=interval)

    def _forward_loss(self, batch: dict[str, paddle.Tensor]) -> paddle.Tensor:
        if self.amp != "none":
            with paddle.amp.auto_cast(dtype="float16" if self.amp == "fp16" else "bfloat16"):
                return self.train_model(**batch).loss
        return self.train_model(**batch).loss

    def _optimizer_step(self, micro_batches: list[list[int]], scaler) -> float:
        """One optimizer step over `micro_batches` (gradient accumulation); returns the mean loss."""
        rank_seed = self.args.seed + 1_000_003 * self.rank + 7919 * self.state.global_step
        paddle.seed(rank_seed)  # dropout masks depend only on (seed, rank, step): exact resume
        total_loss = 0.0
        for i, indices in enumerate(micro_batches):
            batch = self.train_data.batch(indices)
            last = i == len(micro_batches) - 1
            sync = self.world_size == 1 or last
            context = self.train_model.no_sync() if not sync else _nullcontext()
            with context:
                loss = self._forward_loss(batch) / len(micro_batches)
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
            total_loss += float(loss)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad()
        self.scheduler.step()
        return total_loss

    # ---------------------------------------------------------------------------------- evaluation
    def predict(self, data: ArrayDataset) -> dict[str, np.ndarray]:
        """Model outputs for every feature of `data`, in order, gathered over all processes."""
        was_training = self.model.training
        self.model.eval()
        indices = np.arange(len(data))[self.rank :: self.world_size]
        outputs: dict[str, list[np.ndarray]] = {k: [] for k in self.prediction_keys}
        feed = {k: v for k, v in data.arrays.items() if not _is_label_key(k)}
        with paddle.no_grad():
            for start in range(0, len(indices), self.args.eval_batch_size):
                chunk = indices[start : start + self.args.eval_batch_size]
                result = self.model(**{k: paddle.to_tensor(v[chunk]) for k, v in feed.items()})
                for key in self.prediction_keys:
                    outputs[key].append(getattr(result, key).astype("float32").numpy())
        local = {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in outputs.items()}
        if was_training:
            self.model.train()
        if self.world_size == 1:
            return local
        gathered: list[Any] = []
        dist.all_gather_object(gathered, (indices, local))
        order = np.concatenate([g[0] for g in gathered])
        merged = {k: np.concatenate([g[1][k] for g in gathered if len(g[0])]) for k in self.prediction_keys}
        inverse = np.argsort(order)
        return {k: v[inverse] for k, v in merged.items()}

    def evaluate(self, data: ArrayDataset | None = None) -> dict[str, float]:
        data = data if data is not None else self.eval_data
        predictions = self.predict(data)
        if self.compute_metrics is None:
            raise ValueError("Trainer.evaluate needs compute_metrics")
        return {k: float(v) for k, v in self.compute_metrics(predictions).items()}

    def _evaluate_and_track(self) -> dict[str, float]:
        metrics = self.evaluate()
        if self.main_metric not in metrics:
            raise KeyError(f"compute_metrics returned {sorted(metrics)}, without the main metric {self.main_metric!r}")
        value = metrics[self.main_metric]
        best = self.state.best_metric
        improved = best is None or (value > best if self.greater_is_better else value < best)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.global_step
            self.state.evaluations_without_improvement = 0
            if self.is_main:
                self._save_model(self.out / BEST_DIR)
        else:
            self.state.evaluations_without_improvement += 1
        self._log({"event": "eval", "step": self.state.global_step, "epoch": self.state.epoch, **metrics,
                   "best": self.state.best_metric, "best_step": self.state.best_step})
        return metrics

    # --------------------------------------------------------------------------------- checkpoints
    def _save_model(self, directory: Path) -> None:
        with atomic_directory(directory) as tmp:
            self.model.save_pretrained(tmp)
            if self.save_extra is not None:
                self.save_extra(tmp)

    def _save_checkpoint(self) -> None:
        """Model, optimizer, scheduler and position, replacing the previous checkpoint only when complete."""
        if not self.is_main:
            return
        from .weights import write_safetensors

        with atomic_directory(self.out / CHECKPOINT_DIR) as tmp:
            self.model.save_pretrained(tmp)
            if self.save_extra is not None:
                self.save_extra(tmp)
            write_safetensors(_structured_optimizer_state(self.optimizer, self.model), tmp / OPTIMIZER_FILE, "paddle")
            state = dataclasses.asdict(self.state)
            state.pop("history")
            payload = {"trainer": state, "scheduler": self.scheduler.state_dict(),
                       "args": dataclasses.asdict(self.args), "world_size": self.world_size}
            (tmp / STATE_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")

    def _resume(self) -> None:
        directory = self.out / CHECKPOINT_DIR
        if not (directory / STATE_FILE).is_file():
            logger.warning("--resume: no checkpoint in %s; starting from scratch", directory)
            print(f"note: nothing to resume in {directory}; starting from scratch")
            return
        from .weights import load_state_into, read_checkpoint, _read_safetensors

        payload = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        load_state_into(self.model, read_checkpoint(directory))
        tensors, _ = _read_safetensors(directory / OPTIMIZER_FILE)
        _restore_optimizer_state(self.optimizer, self.model, tensors, payload["scheduler"])
        self.scheduler.set_state_dict(payload["scheduler"])
        self.state = TrainerState(**payload["trainer"])
        print(f"resumed from {directory} at step {self.state.global_step} (epoch {self.state.epoch}, "
              f"batch {self.state.batch_in_epoch})")


def _is_label_key(key: str) -> bool:
    return key in ("labels", "start_positions", "end_positions")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
