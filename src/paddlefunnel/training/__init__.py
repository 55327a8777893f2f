"""Training: hyperparameters and recipes (arguments), feeding (batches, distributed), the optimizer and its
schedule, the trainer loop, checkpoints to resume from, and batch prediction shared with the task pipelines."""

from .arguments import TrainingArguments, recipe_path
from .batches import ArrayDataset, ResumableBatchSampler
from .checkpointing import BEST_DIR, CHECKPOINT_DIR, OPTIMIZER_FILE, STATE_FILE
from .distributed import init_distributed
from .optimizer import AdamW, lr_factor, no_decay_names
from .prediction import predict_arrays
from .trainer import LOG_FILE, MetricsFn, Trainer, TrainerState, TrainResult

__all__ = [
    "AdamW",
    "ArrayDataset",
    "BEST_DIR",
    "CHECKPOINT_DIR",
    "LOG_FILE",
    "MetricsFn",
    "OPTIMIZER_FILE",
    "ResumableBatchSampler",
    "STATE_FILE",
    "Trainer",
    "TrainerState",
    "TrainResult",
    "TrainingArguments",
    "init_distributed",
    "lr_factor",
    "no_decay_names",
    "predict_arrays",
    "recipe_path",
]
