"""Activation recomputation (`--recompute`): peak memory and time of one training step, plain vs recomputed.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/recompute_memory.py            # table + RESULTS.md section
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/recompute_memory.py --no-write # table only

Model: FunnelForSequenceClassification with the small-base shape (random weights, dropout on), AdamW as the
Trainer builds it, one batch of random token ids. Each (length, batch, mode) runs in its own process, so one
measurement's peak cannot hide another's. In each process: build the model, take one warm-up step (it creates
AdamW's moments), hand freed memory back to the OS (malloc_trim), reset the kernel's resident high-water mark
(/proc/self/clear_refs), then time a second step. Reported: the process's resident size before that step
(weights, gradients, optimizer state), the peak during it, and the difference, which is what the step itself
needed (activations kept for backward, plus temporaries); and the step's wall time.
"""

from __future__ import annotations

import paddlefunnel  # noqa: F401,I001  (first: CPU math settings must precede Paddle's import)
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle

from paddlefunnel import FunnelConfig
from paddlefunnel.modeling.heads import FunnelForSequenceClassification
from paddlefunnel.runtime import release_freed_memory, use_all_cpu_cores
from paddlefunnel.training import TrainingArguments
from paddlefunnel.training.optimizer import build_optimizer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## Recomputation"
CASES = ((512, 8), (128, 8))
MODES = ("plain", "recompute")


def _status_mib(key: str) -> float:
    """VmRSS (resident now) or VmHWM (resident high-water mark) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak() -> None:
    """Make VmHWM start again from the current resident size (Linux: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(seq_len: int, batch: int, mode: str) -> dict:
    """One process's measurement (see the module docstring)."""
    use_all_cpu_cores()
    paddle.seed(0)
    model = FunnelForSequenceClassification(FunnelConfig.from_preset("small-base", num_labels=2))
    if mode == "recompute":
        model.gradient_checkpointing_enable()
    model.train()
    with tempfile.TemporaryDirectory() as out:
        optimizer, scheduler = build_optimizer(model, TrainingArguments(output_dir=out, max_steps=10), 10)
    rng = np.random.default_rng(0)
    inputs = {"input_ids": paddle.to_tensor(rng.integers(10, 30000, (batch, seq_len))),
              "labels": paddle.to_tensor(rng.integers(0, 2, (batch,)))}

    def step() -> float:
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        return float(loss)

    step()  # warm-up: AdamW's moments are created here
    release_freed_memory()
    resting = _status_mib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    loss = step()
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM")
    return {"seq_len": seq_len, "batch": batch, "mode": mode, "resting_mib": resting, "peak_mib": peak,
            "step_mib": peak - resting, "seconds": seconds, "loss": loss}


def run_child(seq_len: int, batch: int, mode: str) -> dict:
    command = [sys.executable, __file__, "--child", str(seq_len), str(batch), mode]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| seq x batch | mode | resident before step MiB | peak during step MiB | step needs MiB | "
             "vs plain | step s | vs plain |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    plain = {(r["seq_len"], r["batch"]): r for r in rows if r["mode"] == "plain"}
    for r in rows:
        base = plain[(r["seq_len"], r["batch"])]
        lines.append(f"| {r['seq_len']} x {r['batch']} | {r['mode']} | {r['resting_mib']:.0f} | {r['peak_mib']:.0f} | "
                     f"{r['step_mib']:.0f} | {r['step_mib'] / base['step_mib']:.2f}x | {r['seconds']:.1f} | "
                     f"{r['seconds'] / base['seconds']:.2f}x |")
    return "\n".join(lines)


def write_results(rows: list[dict], command: str, load: str) -> None:
    """Replace (or append) the Recomputation section of RESULTS.md."""
    threads = os.environ.get("OMP_NUM_THREADS", "all cores")
    losses = ", ".join(f"{row['seq_len']} {row['mode']} {row['loss']:.6f}" for row in rows)
    section = "\n".join([
        HEADING, "",
        f"One AdamW training step of FunnelForSequenceClassification, small-base shape (random weights, dropout "
        f"on), plain vs `--recompute` (each layer's activations recomputed in backward); one process per row, "
        f"OMP_NUM_THREADS={threads}, measured {datetime.date.today().isoformat()} on a 2-core machine shared with "
        f"other jobs (times are noisy; memory is what matters). 'step needs' = resident high-water mark during "
        f"the second step minus the resident size before it (weights, gradients and AdamW state excluded). "
        f"Command: `{command}`", "",
        table(rows), "",
        f"Load average (1 min) at the start and end of the run: {load}. Loss of the timed step per row: "
        f"{losses}.", "",
    ])
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if HEADING in text:
        start = text.index(HEADING)
        following = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[following + 1:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=3, metavar=("SEQ", "BATCH", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), int(args.child[1]), args.child[2])))
        return
    rows = []
    load_before = os.getloadavg()[0]
    for seq_len, batch in CASES:
        for mode in MODES:
            rows.append(run_child(seq_len, batch, mode))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if not args.no_write:
        threads = os.environ.get("OMP_NUM_THREADS")
        prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
        load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
        write_results(rows, prefix + ".venv/bin/python benchmarks/recompute_memory.py", load)


if __name__ == "__main__":
    main()
