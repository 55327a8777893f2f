"""The C kernels (paddlefunnel.modeling.cpu_kernels) against the Paddle ops they replace, one at a time, forward +
backward on the shapes of a small-base training step (batch 8), in one process, alternating; the numbers behind
the kernels' docstrings and RESULTS.md "CPU kernels".

    .venv/bin/python benchmarks/bench_kernels.py [--seq 512] [--repeats 7] [--no-write]

Each row runs the model's own building block (ops.LayerNorm, ops.Dropout, ...) with the kernels on and inside
`cpu_kernels.disabled()` (what runs where the library is not built), so it measures what the model gains.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_file import write_section  # noqa: E402

from paddlefunnel.modeling import activations, cpu_kernels, ops, positions  # noqa: E402
from paddlefunnel.runtime import reuse_freed_memory, use_all_cpu_cores  # noqa: E402


def _leaf(shape: list[int], seed: int) -> paddle.Tensor:
    tensor = paddle.to_tensor(np.random.default_rng(seed).standard_normal(shape).astype("float32"))
    tensor.stop_gradient = False
    return tensor


def cases(seq: int) -> dict[str, Callable[[], Callable[[], None]]]:
    """name -> a builder of one forward + backward call (built fresh for each side: same inputs, same layers)."""
    batch, heads, d_model, d_head, inner = 8, 12, 768, 64, 3072

    def of(function, *shapes):
        def build():
            inputs = [_leaf(shape, i) for i, shape in enumerate(shapes)]

            def run():
                out = function(*inputs)
                out.backward(paddle.ones_like(out))
            return run
        return build

    layer_norm = ops.LayerNorm(d_model)
    dropout = ops.Dropout(0.1)
    dropout.train()
    chunk = positions.band_chunk(seq, seq)
    return {
        f"layer norm [{batch}, {seq}, {d_model}]": of(layer_norm, [batch, seq, d_model]),
        f"dropout 0.1 [{batch}, {heads}, {seq}, {seq}]": of(dropout, [batch, heads, seq, seq]),
        f"bias add [{batch * seq}, {inner}]": of(ops.add_bias, [batch * seq, inner], [inner]),
        f"GELU (tanh) [{batch}, {seq}, {inner}]": of(activations.get_activation("gelu_new"), [batch, seq, inner]),
        f"softmax [{batch}, {heads}, {seq}, {seq}]": of(
            lambda x: cpu_kernels.softmax(x) if cpu_kernels.applies(x) else F.softmax(x, axis=-1),
            [batch, heads, seq, seq]),
        f"split + merge heads [{batch}, {seq}, {d_model}]": of(
            lambda x: ops.merge_heads(ops.split_heads(x, heads, d_head) * 2.0), [batch, seq, d_model]),
        f"relative shift, {'banded' if chunk else 'full'} [{batch}, {heads}, {seq}, {seq}]": of(
            lambda q, r: positions.relative_position_scores(q, r, seq, 1),
            [batch, heads, seq, d_head], [1, heads, 2 * seq, d_head]),
        f"concat [{batch}, {heads}, {seq}, 64 + 4]": of(
            lambda a, b: ops.concat([a, b], -1), [batch, heads, seq, d_head], [batch, heads, seq, 4]),
    }


def best_time(run: Callable[[], None], repeats: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    threads = use_all_cpu_cores()
    if not cpu_kernels.available():
        raise SystemExit(f"the C kernels are {cpu_kernels.describe()}")
    lines = ["| block, forward + backward | Paddle's ops ms | C kernel ms | speed-up |", "|---|---:|---:|---:|"]
    for name, build in cases(args.seq).items():
        with cpu_kernels.disabled():
            paddle_ms = best_time(build(), args.repeats) * 1e3
        kernel_ms = best_time(build(), args.repeats) * 1e3
        lines.append(f"| {name} | {paddle_ms:.1f} | {kernel_ms:.1f} | {paddle_ms / kernel_ms:.1f}x |")
    section = f"## CPU kernels, seq {args.seq}"
    text = (f"{section}\n\nCommand: `.venv/bin/python benchmarks/bench_kernels.py --seq {args.seq}`\n\n"
            f"Measured {time.strftime('%Y-%m-%d')}, {threads} thread(s), minimum of {args.repeats} runs; the model's "
            "blocks with the C kernels and inside `cpu_kernels.disabled()` (Paddle's ops, the fallback), "
            "alternating in one process.\n\n" + "\n".join(lines))
    print(text)
    if not args.no_write:
        write_section(section, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
