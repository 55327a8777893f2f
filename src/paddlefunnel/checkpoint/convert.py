"""`paddlefunnel convert`: rewrite a checkpoint directory in Paddle layout, or for `transformers`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..config import FunnelConfig
from ..config_layouts import require_config_file
from ..errors import InputError, MissingFileError
from ..hub import CONFIG, TOKENIZER, WEIGHTS, resolve_pretrained
from ..io_utils import atomic_directory, check_no_overlap, check_output_dir
from ..registry import TOKENIZER_FILES

CONVERSION_TARGETS = ("paddle", "hf")


def convert_checkpoint(source: str | os.PathLike, target: str | os.PathLike, to: str = "paddle",
                       overwrite: bool = False, *, model_class_for: Callable[[FunnelConfig], type]) -> Path:
    """Rewrite a checkpoint (a directory, a weights file or a hub name) in Paddle layout (`to="paddle"`) or for `transformers` (`to="hf"`).

    `model_class_for(config)` picks the class to load the weights into (`paddlefunnel.modeling.model_class_for`:
    the architecture the config names); this package does not import the model code itself. Tokenizer files
    travel along. The target appears only when complete (built in a temporary directory).
    """
    if to not in CONVERSION_TARGETS:
        raise InputError(f"--to must be 'paddle' or 'hf', got {to!r}")
    target = check_output_dir(target, what="converted model directory", inputs=(source,), overwrite=overwrite)
    source = resolve_pretrained(source, parts=(CONFIG, WEIGHTS, TOKENIZER))  # a hub name: its cached snapshot
    check_no_overlap(target, (source,), "converted model directory")  # a hub name's snapshot, now resolved
    if not source.exists():
        raise MissingFileError(f"{source}: no such model directory or weights file")
    source_dir = source if source.is_dir() else source.parent
    require_config_file(source_dir, hint=" next to the weights")  # config.json or PaddleNLP's model_config.json
    model = model_class_for(FunnelConfig.from_pretrained(source_dir)).from_pretrained(source)
    with atomic_directory(target, "converted model directory") as tmp:
        model.save_pretrained(tmp, hf_format=(to == "hf"))
        for name in TOKENIZER_FILES:
            if (source_dir / name).is_file():
                shutil.copy2(source_dir / name, tmp / name)
    return target
