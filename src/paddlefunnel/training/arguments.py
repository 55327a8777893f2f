"""The hyperparameters of a training run, checked when made, from code or from a JSON recipe file."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingFileError
from ..io_utils import read_json_object

LR_SCHEDULES = ("linear", "cosine", "constant")
AMP_MODES = ("none", "fp16", "bf16")


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
    resume: bool = False  # continue the run in output_dir from its checkpoint-last/
    overwrite: bool = False  # start over in an output_dir holding an earlier run (training/rundir.py)
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "learning_rate": self.learning_rate > 0,
            "per_device_batch_size": self.per_device_batch_size > 0,
            "eval_batch_size": self.eval_batch_size > 0,
            "gradient_accumulation_steps": self.gradient_accumulation_steps > 0,
            "num_epochs": self.num_epochs > 0 or self.max_steps > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "lr_schedule": self.lr_schedule in LR_SCHEDULES,
            "amp": self.amp in AMP_MODES,
            "max_grad_norm": self.max_grad_norm >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"invalid training arguments: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @classmethod
    def from_recipe(cls, path: str | os.PathLike, section: str | None = None, **overrides: Any) -> TrainingArguments:
        """Hyperparameters from a JSON recipe file (optionally one named section of it), then the overrides that
        are not None (unset command-line flags), so a flag beats the recipe and the recipe beats the defaults."""
        path = Path(path)
        recipe = read_json_object(path, "recipe file")
        values = recipe.get(section, None) if section else recipe
        if values is None:
            raise InputError(f"{path}: no section {section!r}; available: "
                             f"{sorted(k for k in recipe if not k.startswith('_'))}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if not k.startswith("_")}  # "_comment" keys document the recipe
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{path}: unknown training arguments {unknown}; known: {sorted(known)}")
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def recipe_path(name: str) -> Path:
    """A recipe file: `name` as a path, else the built-in recipe of that name (glue, squad) shipped in the package."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = resources.files("paddlefunnel").joinpath(f"recipes/{name.removesuffix('.json')}.json")
    if packaged.is_file():
        return Path(str(packaged))
    raise MissingFileError(f"--recipe {name!r}: no such file, and no built-in recipe of that name (glue, squad)")
