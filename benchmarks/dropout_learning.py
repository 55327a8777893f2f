"""Does the model's CPU dropout (`ops.Dropout`: the C kernel's counter-based masks, `cpu_kernels.dropout`, or NumPy
PCG64 masks where the kernels are not built) learn as well as Paddle's own dropout kernel? Trains the demo's SQuAD v2.0 task once per (dropout, seed) and prints dev F1.

    .venv/bin/python benchmarks/dropout_learning.py --seeds 0 1 2 3 [--out dropout_learning.jsonl]
    .venv/bin/python benchmarks/dropout_learning.py --draws 150     # mean loss / gradient norm, fixed model

Each run takes ~6 min on one core; the two dropouts of a seed run side by side, one thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

DROPOUTS = ("paddle", "ours")


@contextmanager
def dropout_in_use(dropout: str):
    """"paddle": the model's Dropout layers run Paddle's kernel inside the block; "ours": the model as shipped."""
    import paddle
    from paddlefunnel.modeling import ops

    def paddle_kernel(self, x):
        return x if not self.training or self.p == 0 else paddle.nn.Dropout.forward(self, x)

    shipped = ops.Dropout.forward
    if dropout == "paddle":
        ops.Dropout.forward = paddle_kernel
    try:
        yield
    finally:
        ops.Dropout.forward = shipped


def loss_statistics(draws: int) -> None:
    """Mean training loss and gradient norm of one fixed model and batch under each dropout."""
    import numpy as np
    import paddle

    from paddlefunnel.cli import demo
    from paddlefunnel.config import FunnelConfig
    from paddlefunnel.modeling import FunnelForSequenceClassification

    paddle.seed(0)
    config = FunnelConfig(**demo.DEMO_QA_MODEL)
    model = FunnelForSequenceClassification(config)
    model.train()
    rng = np.random.default_rng(0)
    input_ids = paddle.to_tensor(rng.integers(5, config.vocab_size, (16, 64)))
    labels = paddle.to_tensor(rng.integers(0, 2, (16,)))
    for dropout in DROPOUTS:
        losses, norms = [], []
        with dropout_in_use(dropout):
            for draw in range(draws):
                paddle.seed(1000 + draw)
                loss = model(input_ids=input_ids, labels=labels).loss
                loss.backward()
                norms.append(float(sum((p.grad ** 2).sum() for p in model.parameters() if p.grad is not None)) ** 0.5)
                model.clear_gradients()
                losses.append(float(loss))
        error = lambda values: statistics.stdev(values) / len(values) ** 0.5  # noqa: E731
        print(f"{dropout}: loss {statistics.mean(losses):.4f} (standard error {error(losses):.4f}), gradient norm "
              f"{statistics.mean(norms):.3f} ({error(norms):.3f}), {draws} draws")


def run_one(dropout: str, seed: int, work_dir: Path) -> dict:
    """One training run in this process (called in a child process by `main`)."""
    import paddle

    paddle.base.core.set_num_threads(1)
    from paddlefunnel.cli import demo

    demo.demo_vocabulary(work_dir)
    with dropout_in_use(dropout):
        metrics = demo.demo_squad(work_dir, work_dir / "tokenizer", seed=seed)  # exactly the demo's recipe
    return {"dropout": dropout, "seed": seed, "f1": metrics["f1"], "answerable_f1": metrics["HasAns_f1"],
            "unanswerable_f1": metrics["NoAns_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", default="dropout_learning.jsonl", help="JSON lines, one per run")
    parser.add_argument("--draws", type=int, help="only the fixed-model loss statistics, with this many draws")
    parser.add_argument("--one", nargs=2, metavar=("DROPOUT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.draws:
        loss_statistics(args.draws)
        return
    if args.one:
        with tempfile.TemporaryDirectory() as work_dir:
            print(json.dumps(run_one(args.one[0], int(args.one[1]), Path(work_dir))))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for seed in args.seeds:
        children = [subprocess.Popen([sys.executable, __file__, "--one", dropout, str(seed)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    for dropout in DROPOUTS]
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"a training run failed (exit {child.returncode}); rerun it with --one to see why")
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text("".join(json.dumps(row) + "\n" for row in rows))
    for dropout in DROPOUTS:
        scores = [row["f1"] for row in rows if row["dropout"] == dropout]
        print(f"{dropout}: dev F1 {', '.join(f'{s:.1f}' for s in scores)}; mean {statistics.mean(scores):.2f}")


if __name__ == "__main__":
    main()
