"""The hyperparameters of a training run, checked when made, from code or from a JSON recipe file.

A recipe file is a JSON object of named sections (or one flat section); a section maps TrainingArguments fields
to values. Keys starting with "_" are not training arguments: "_source" / "_comment" document the section, and
"_task_options" holds options of the task's command (by their command-line destination name, e.g.
{"max_seq_length": 512, "max_qa_length": 128}), read with `recipe_task_options` and applied by the CLI to the
options the command line left unset.
"""

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
    eval_steps: int = 0  # > 0: every eval_steps steps, not at epoch ends; 0: at each epoch end; both: at the end
    save_steps: int = 0  # 0: checkpoint whenever evaluating, and at the end
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = never
    amp: str = "none"  # none | fp16 | bf16 (GPU only)
    resume: bool = False  # continue the run in output_dir from its checkpoint-last/
    overwrite: bool = False  # start over in an output_dir holding an earlier run (training/rundir.py)
    progress: bool = True
    layer_decay: float = 1.0  # encoder layer i of L trains at lr * layer_decay ** (L - i) (training/optimizer.py)
    recompute: bool = False  # recompute each layer's activations in backward: less memory, ~1 more forward pass

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
            "layer_decay": 0 < self.layer_decay <= 1,
            "recompute": isinstance(self.recompute, bool),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"invalid training arguments: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @classmethod
    def from_recipe(cls, path: str | os.PathLike, section: str | None = None, **overrides: Any) -> TrainingArguments:
        """Hyperparameters from a JSON recipe file (optionally one named section of it), then the overrides that
        are not None (unset command-line flags), so a flag beats the recipe and the recipe beats the defaults."""
        path = Path(path)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in read_recipe_section(path, section).items() if not k.startswith("_")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{path}: unknown training arguments {unknown}; known: {sorted(known)}")
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


TASK_OPTIONS_KEY = "_task_options"


def read_recipe_section(path: str | os.PathLike, section: str | None = None) -> dict[str, Any]:
    """One section of a recipe file as it is written (the whole file when `section` is None)."""
    path = Path(path)
    recipe = read_json_object(path, "recipe file")
    values = recipe.get(section, None) if section else recipe
    if not isinstance(values, dict):
        raise InputError(f"{path}: no section {section!r}; available: "
                         f"{sorted(k for k in recipe if not k.startswith('_'))}")
    return values


def recipe_task_options(path: str | os.PathLike, section: str | None = None) -> dict[str, Any]:
    """The section's "_task_options": values for the task command's own options (sequence lengths and the like),
    keyed by the option's destination name (`--max-seq-length` -> "max_seq_length"); {} when it has none."""
    path = Path(path)
    options = read_recipe_section(path, section).get(TASK_OPTIONS_KEY, {})
    where = f"{path}: section {section!r}: {TASK_OPTIONS_KEY}" if section else f"{path}: {TASK_OPTIONS_KEY}"
    if not isinstance(options, dict):
        raise InputError(f"{where} must be an object of option name -> value, got {type(options).__name__}")
    bad = sorted(name for name, value in options.items()
                 if not name.isidentifier() or not isinstance(value, (int, float, str, bool)))
    if bad:
        raise InputError(f"{where}: {bad} are not option names (like max_seq_length) with a number, string or "
                         f"boolean value")
    return dict(options)


def apply_task_options(options: dict[str, Any], defaults: dict[str, Any], task_options: dict[str, Any],
                       source: str) -> dict[str, Any]:
    """`options` (a command's parsed options by name) with the recipe's task options filled in where the
    command line left them unset: None, or equal to the option's default in `defaults` (so a flag given with
    exactly its default value also yields to the recipe). An option the command does not have is an error, not
    silently dropped: the recipe section was written for another command."""
    missing = sorted(name for name in task_options if name not in options)
    if missing:
        raise InputError(f"{source} sets {missing}, which this command does not take")
    unset = {name for name in task_options if options[name] is None or options[name] == defaults.get(name)}
    return {**options, **{name: task_options[name] for name in unset}}


def builtin_recipes() -> list[str]:
    """Names of the recipe files shipped in the package (paddlefunnel/recipes/*.json)."""
    folder = resources.files("paddlefunnel").joinpath("recipes")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


def recipe_path(name: str) -> Path:
    """A recipe file: `name` as a path, else the built-in recipe of that name shipped in the package."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = resources.files("paddlefunnel").joinpath(f"recipes/{name.removesuffix('.json')}.json")
    if packaged.is_file():
        return Path(str(packaged))
    raise MissingFileError(f"--recipe {name!r}: no such file, and no built-in recipe of that name "
                           f"({', '.join(builtin_recipes())})")
