"""A training run's output directory: what counts as an earlier run there, and what --resume / --overwrite do.

A fresh run into a directory that holds an earlier run is refused (its results would be replaced without a
word). `--resume` continues it. `--overwrite` starts over, and the earlier run is moved aside, not deleted: when
the new run's training starts (its data and model have loaded), the earlier run's entries are renamed into
`<out>/.previous-run/`, which is removed only when the new run has finished. So a new run that fails or is
killed never leaves a mix of two runs' files in `<out>` (a later --resume would otherwise continue the new
checkpoint next to the old best/), and the earlier run can still be recovered by hand until then.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..io_utils import check_output_dir, writing
from ..registry import PRETRAINING_OUTPUT_DIRS, RESULTS_FILE
from .arguments import TrainingArguments
from .checkpointing import BEST_DIR, CHECKPOINT_DIR

LOG_FILE = "log.jsonl"
VISUALDL_DIR = "visualdl"
PREVIOUS_RUN_DIR = ".previous-run"  # --overwrite: the run being replaced, until the new one finishes
# Everything a run writes into its output directory (pretraining also writes its model directories).
RUN_ENTRIES = (BEST_DIR, CHECKPOINT_DIR, LOG_FILE, RESULTS_FILE, VISUALDL_DIR,
               *sorted({name for names in PRETRAINING_OUTPUT_DIRS.values() for name in names}))
_MOVING = PREVIOUS_RUN_DIR + ".moving"  # the earlier run's entries while they are being moved aside


def check_run_directory(args: TrainingArguments, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Refuse a run's output directory before any work (see io_utils.check_output_dir): an earlier run there
    needs --resume or --overwrite; the directory never overlaps an input (data, model, tokenizer)."""
    return check_output_dir(args.output_dir, what="training output directory", inputs=inputs,
                            overwrite=args.overwrite, resume=args.resume,
                            previous=RUN_ENTRIES + (PREVIOUS_RUN_DIR, _MOVING),
                            hint="use --resume to continue it or --overwrite to start over")


def set_previous_run_aside(out: Path) -> None:
    """--overwrite: move the earlier run's entries into `<out>/.previous-run/` (see the module docstring).

    Entries are renamed one by one into a staging folder that is itself renamed when complete, so a kill in the
    middle is finished by the next call. If `.previous-run/` already exists, an earlier --overwrite run was
    interrupted: the entries now in `out` are that unfinished run's, and they are discarded instead.
    """
    aside, moving = out / PREVIOUS_RUN_DIR, out / _MOVING
    entries = [out / name for name in RUN_ENTRIES if (out / name).exists()]
    if not entries and not moving.exists():
        return
    with writing(out, "training output directory"):
        if aside.exists() and not moving.exists():
            for entry in entries:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            return
        moving.mkdir(exist_ok=True)
        for entry in entries:
            os.replace(entry, moving / entry.name)
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(moving, aside)


def discard_previous_run(out: Path) -> None:
    """The new run has finished: the run it replaced is no longer needed."""
    aside = out / PREVIOUS_RUN_DIR
    if aside.exists():
        shutil.rmtree(aside, ignore_errors=True)
