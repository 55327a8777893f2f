"""Fine-tuning engine: AdamW + warmup/decay, accumulation, clipping, evaluation, best checkpoint, exact resume,
multi-process data parallel (`python -m paddle.distributed.launch`), AMP on GPU.

Determinism: the data order of epoch e is a permutation seeded by (seed, e), and dropout is reseeded from
(seed, step, rank) before every optimizer step, so an interrupted run resumed from its last checkpoint ends
with the same weights as an uninterrupted one, without saving generator states.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn
from tqdm.auto import tqdm

from ..errors import NonFiniteLossError
from ..io_utils import atomic_write_text, writing
from .arguments import TrainingArguments
from .batches import ArrayDataset, ResumableBatchSampler
from .checkpointing import (
    BEST_DIR,
    CHECKPOINT_DIR,
    SaveExtra,
    has_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    save_model,
)
from .distributed import init_distributed
from .optimizer import build_optimizer
from .prediction import predict_arrays
from .rundir import LOG_FILE, VISUALDL_DIR, check_run_directory, discard_previous_run, set_previous_run_aside

logger = logging.getLogger("paddlefunnel")

MetricsFn = Callable[[dict[str, np.ndarray]], dict[str, float]]


@dataclass
class TrainerState:
    """Where a run stands; everything but `history` is saved in each checkpoint and restored on resume."""

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
        save_extra: SaveExtra | None = None,
    ) -> None:
        self.args = args
        self.rank, self.world_size = init_distributed()
        self.model = model
        if args.recompute:  # recompute each layer's activations in backward (modeling/encoder.py run_layer)
            model.gradient_checkpointing_enable()
        self.train_data, self.eval_data = train_data, eval_data
        self.compute_metrics = compute_metrics
        self.main_metric, self.greater_is_better = main_metric, greater_is_better
        self.prediction_keys = tuple(prediction_keys)
        self.save_extra = save_extra
        self.out = Path(args.output_dir)
        self.state = TrainerState()
        device = paddle.device.get_device()
        if args.amp != "none" and not device.startswith("gpu"):
            logger.warning("AMP (%s) needs a GPU; running fp32 on %s", args.amp, device)
        self.amp = args.amp if device.startswith("gpu") else "none"
        self.train_model = paddle.DataParallel(model) if self.world_size > 1 else model
        self.final_metrics: dict[str, float] = {}  # of the last evaluation during train()
        self._visualdl = None

    # ------------------------------------------------------------------------------------- sizes
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

    # ------------------------------------------------------------------------------------ training
    def train(self) -> TrainResult:
        """Train to `total_steps()` (or an early stop), evaluating and checkpointing on the way.

        Without eval data there is nothing to select a best model by, so the final model becomes `best/`.
        """
        if self.train_data is None:
            raise ValueError("Trainer.train needs train_data")
        total = self.total_steps()
        if self.is_main:  # other ranks would see what rank 0 starts writing and refuse their own run
            check_run_directory(self.args)  # an earlier run here needs --resume or --overwrite
            if self.args.overwrite:
                set_previous_run_aside(self.out)
        self._start(total)
        stopped_early = False
        progress = self._progress_bar(total)
        try:
            for micro_batches in self._step_batches(total):
                loss = self._optimizer_step(micro_batches)
                self._count_step(loss)
                self._report_step(loss, total, progress)
                stopped_early = self._after_step(self._end_epoch_if_done(), total)
                if stopped_early:
                    break
        finally:
            self._close(progress)
        if self.eval_data is None and self.is_main:
            save_model(self.out / BEST_DIR, self.model, self.save_extra)
        if self.is_main:
            discard_previous_run(self.out)
        return TrainResult(self.state.global_step, self.state.best_metric, self.state.best_step, self.final_metrics,
                           stopped_early, self.out / LOG_FILE)

    def _start(self, total: int) -> None:
        """Optimizer and scheduler for `total` steps; then the checkpoint (resume) or a fresh log."""
        self.optimizer, self.scheduler = build_optimizer(self.model, self.args, total)
        self._scaler = paddle.amp.GradScaler() if self.amp == "fp16" else None
        if self.args.resume:
            self._resume()  # (without --resume an earlier log was refused or, with --overwrite, moved aside)
        self._visualdl = self._open_visualdl()
        self.final_metrics = {}
        self.model.train()

    def _step_batches(self, total: int) -> Iterator[list[list[int]]]:
        """This rank's micro-batches (index lists) of each optimizer step from the current position to `total`.

        Reads the position live: a new epoch's sampler starts once the consumer has moved `state.epoch` on.
        An epoch's last global batches that do not fill an accumulation group are not used.
        """
        accumulation = self.args.gradient_accumulation_steps
        while self.state.global_step < total:
            epoch = self.state.epoch
            if hasattr(self.train_data, "set_epoch"):  # data drawn afresh each pass (pretraining's dynamic masks)
                self.train_data.set_epoch(epoch)
            batches = iter(ResumableBatchSampler(
                len(self.train_data), self.global_batch_size(), self.args.seed, epoch,
                self.state.batch_in_epoch * accumulation, self.rank, self.world_size))
            while self.state.epoch == epoch and self.state.global_step < total:
                yield [b for b in (next(batches, None) for _ in range(accumulation)) if b]

    def _count_step(self, loss: float) -> None:
        self.state.global_step += 1
        self.state.batch_in_epoch += 1
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss} at step {self.state.global_step}; stopping. The last good checkpoint "
                f"({self.out / CHECKPOINT_DIR}, if any) is left as it was")

    def _report_step(self, loss: float, total: int, progress: tqdm | None) -> None:
        step, lr = self.state.global_step, self.scheduler.get_lr()
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
        if step % self.args.logging_steps == 0 or step == total:
            self._log({"event": "train", "step": step, "epoch": self.state.epoch, "loss": loss, "lr": lr,
                       **{k: float(np.mean(v)) for k, v in self._step_scalars.items()}})

    def _end_epoch_if_done(self) -> bool:
        if self.state.batch_in_epoch < self.steps_per_epoch():
            return False
        self.state.epoch += 1
        self.state.batch_in_epoch = 0
        return True

    def _evaluation_due(self, epoch_done: bool, total: int) -> bool:
        """transformers' strategies: with eval_steps > 0 every eval_steps steps ("steps"), else at each epoch end
        ("epoch"); under both, at the last step. Epoch ends do not count under "steps": with a small training set
        an epoch is a few steps, and evaluating at each would make eval_steps meaningless."""
        if self.eval_data is None:
            return False
        step, every = self.state.global_step, self.args.eval_steps
        return step == total or (step % every == 0 if every > 0 else epoch_done)

    def _after_step(self, epoch_done: bool, total: int) -> bool:
        """Evaluate and checkpoint when due; True when early stopping ends the run."""
        args, step = self.args, self.state.global_step
        evaluate_now = self._evaluation_due(epoch_done, total)
        stop = False
        if evaluate_now:
            self.final_metrics = self._evaluate_and_track()
            stop = bool(args.early_stopping_patience
                        and self.state.evaluations_without_improvement >= args.early_stopping_patience)
        if (args.save_steps and step % args.save_steps == 0) or evaluate_now or step == total or stop:
            self._save_checkpoint()
        if stop:
            self._log({"event": "early_stop", "step": step, "best_step": self.state.best_step})
        return stop

    def _forward_loss(self, batch: dict[str, paddle.Tensor]) -> paddle.Tensor:
        if self.amp != "none":
            with paddle.amp.auto_cast(dtype="float16" if self.amp == "fp16" else "bfloat16"):
                output = self.train_model(**batch)
        else:
            output = self.train_model(**batch)
        # extra numbers a model reports for the log (e.g. pretraining accuracies): mean over the micro-batches
        for key, value in (getattr(output, "log_scalars", None) or {}).items():
            self._step_scalars.setdefault(key, []).append(float(value))
        return output.loss

    def _optimizer_step(self, micro_batches: list[list[int]]) -> float:
        """One optimizer step over `micro_batches` (gradient accumulation); returns the mean loss.

        With several processes, gradients are all-reduced once per step (on the last micro-batch) only.
        """
        rank_seed = self.args.seed + 1_000_003 * self.rank + 7919 * self.state.global_step
        paddle.seed(rank_seed)  # dropout masks depend only on (seed, rank, step): exact resume
        total_loss, self._step_scalars = 0.0, {}
        for i, indices in enumerate(micro_batches):
            batch = self.train_data.batch(indices)
            sync = self.world_size == 1 or i == len(micro_batches) - 1
            with contextlib.nullcontext() if sync else self.train_model.no_sync():
                loss = self._forward_loss(batch) / len(micro_batches)
                (loss if self._scaler is None else self._scaler.scale(loss)).backward()
            total_loss += float(loss)
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        # Gradients are released, not zero-filled (PyTorch's zero_grad() default): the next backward writes fresh
        # ones instead of adding into zeros. Measured on the 8 x 128 small-base step: the fill alone took 16 ms of
        # about 1.9 s, and alternating blocks of steps ran 1-2% faster without it (RESULTS.md "Training step").
        # A parameter that gets no gradient in a step is then not updated at all, as in the reference.
        self.optimizer.clear_grad(set_to_zero=False)
        self.scheduler.step()
        return total_loss

    # ---------------------------------------------------------------------------------- evaluation
    def predict(self, data: ArrayDataset) -> dict[str, np.ndarray]:
        """Model outputs for every feature of `data`, in order, gathered over all processes."""
        return predict_arrays(self.model, data, self.prediction_keys, self.args.eval_batch_size, self.rank,
                              self.world_size)

    def evaluate(self, data: ArrayDataset | None = None) -> dict[str, float]:
        data = data if data is not None else self.eval_data
        predictions = self.predict(data)
        if self.compute_metrics is None:
            raise ValueError("Trainer.evaluate needs compute_metrics")
        return {k: float(v) for k, v in self.compute_metrics(predictions).items()}

    def _evaluate_and_track(self) -> dict[str, float]:
        """Evaluate; on a new best, save `best/` and reset the early-stopping count, else advance it."""
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
                save_model(self.out / BEST_DIR, self.model, self.save_extra)
        else:
            self.state.evaluations_without_improvement += 1
        self._log({"event": "eval", "step": self.state.global_step, "epoch": self.state.epoch, **metrics,
                   "best": self.state.best_metric, "best_step": self.state.best_step})
        return metrics

    # --------------------------------------------------------------------------------- checkpoints
    def _save_checkpoint(self) -> None:
        if not self.is_main:
            return
        position = dataclasses.asdict(self.state)
        position.pop("history")
        save_checkpoint(self.out / CHECKPOINT_DIR, self.model, self.optimizer, self.scheduler, position,
                        dataclasses.asdict(self.args), self.world_size, self.save_extra)

    def _resume(self) -> None:
        directory = self.out / CHECKPOINT_DIR
        if not has_checkpoint(directory):
            logger.warning("nothing to resume in %s; starting from scratch", directory)
            return
        self.state = TrainerState(**restore_checkpoint(directory, self.model, self.optimizer, self.scheduler))
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", directory, self.state.global_step,
                    self.state.epoch, self.state.batch_in_epoch)
        if self.is_main:  # the steps after the checkpoint are trained again: their old records go
            truncate_log(self.out / LOG_FILE, self.state.global_step)
            self._log({"event": "resume", "step": self.state.global_step})

    # ------------------------------------------------------------------------------------- logging
    def _log(self, record: dict[str, Any]) -> None:
        """Append `record` to the run's log (and VisualDL when installed); the main process only."""
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        self.state.history.append(record)
        with writing(self.out / LOG_FILE, "training log"):
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
            from visualdl import LogWriter  # optional: scalars for VisualDL when it is installed
        except ImportError:
            return None
        return LogWriter(logdir=str(self.out / VISUALDL_DIR))

    def _progress_bar(self, total: int) -> tqdm | None:
        if not (self.args.progress and self.is_main):
            return None
        # On a terminal the bar redraws in place; in a log file every redraw is a line, so redraw rarely there.
        interval = 0.2 if sys.stderr.isatty() else 30.0
        return tqdm(total=total, initial=self.state.global_step, desc="train", unit="step", dynamic_ncols=True,
                    mininterval=interval)

    def _close(self, progress: tqdm | None) -> None:
        if progress is not None:
            progress.close()
        if self._visualdl is not None:
            self._visualdl.close()
            self._visualdl = None


def truncate_log(path: Path, step: int) -> None:
    """Keep only the records of the log at `path` up to `step` (a resumed run's checkpoint), rewritten atomically.

    A run killed after its last checkpoint logged steps that the resumed run trains again; without this the log
    would hold those steps twice. Records without a step are kept; a line that is not JSON (a write cut short by
    the kill) is dropped."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the torn last line of a killed run
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] > step:
            continue
        kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept), "training log")
