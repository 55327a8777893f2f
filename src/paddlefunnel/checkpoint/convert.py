"""`paddlefunnel convert`: rewrite a checkpoint directory in Paddle layout, or for `transformers`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..config import FunnelConfig
from ..errors import InputError, MissingFileError, OutputExistsError
from ..io_utils import atomic_directory
from ..registry import CONFIG_FILE, TOKENIZER_FILES

CONVERSION_TARGETS = ("paddle", "hf")


def convert_checkpoint(source: str | os.PathLike, target: str | os.PathLike, to: str = "paddle",
                       overwrite: bool = False, *, model_class_for: Callable[[FunnelConfig], type]) -> Path:
    """Rewrite a checkpoint directory in Paddle layout (`to="paddle"`) or for `transformers` (`to="hf"`).

    `model_class_for(config)` picks the class to load the weights into (`paddlefunnel.modeling.model_class_for`:
    the architecture the config names); this package does not import the model code itself. Tokenizer files
    travel along. The target appears only when complete (built in a temporary directory).
    """
    if to not in CONVERSION_TARGETS:
        raise InputError(f"--to must be 'paddle' or 'hf', got {to!r}")
    source, target = Path(source), Path(target)
    if not source.exists():
        raise MissingFileError(f"{source}: no such model directory or weights file")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise OutputExistsError(f"{target}: exists and is not empty (use --overwrite to replace it)")
    source_dir = source if source.is_dir() else source.parent
    if not (source_dir / CONFIG_FILE).is_file():
        raise MissingFileError(f"{source_dir / CONFIG_FILE}: no config.json next to the weights")
    model = model_class_for(FunnelConfig.from_pretrained(source_dir)).from_pretrained(source)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, hf_format=(to == "hf"))
        for name in TOKENIZER_FILES:
            if (source_dir / name).is_file():
                shutil.copy2(source_dir / name, tmp / name)
    return target
