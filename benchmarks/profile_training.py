"""Where our training step's time goes: `paddle.profiler`'s operator table for bench.py's train step
(FunnelForSequenceClassification small-base, batch 8, one AdamW step, dropout on), and the matrix products' share
and rate. The measurements behind RESULTS.md "Training step" (issue #16).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_training.py --seq 128 [--steps 2] [--top 25]

Run it once with OMP_NUM_THREADS=1 and once with 2 and compare the rows: an operator that takes the same time at
both runs on one thread. Matrix products are Paddle's `matmul` forward ops plus their gradient nodes; their rate
is three times the forward FLOPs (`paddlefunnel.modeling.flops`) over their profiled time per step. The C kernels
(`modeling.cpu_kernels`) appear as their autograd nodes (`GradNodePyLayer_...`) in backward; their forward calls are
not operators and appear only in the unprofiled step's time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import Case, case_flops, configure_threads, inputs_for, paddle_train_step  # noqa: E402,I001
from bench import reference_and_ours  # noqa: E402

from paddle import profiler  # noqa: E402

MATRIX_PRODUCTS = ("matmul dygraph", "Global_MatmulGradNode")


def operator_times(prof: profiler.Profiler) -> dict[str, tuple[float, int]]:
    """Operator name -> (total CPU milliseconds, calls) over the profiled steps (the data behind
    `Profiler.summary`'s table)."""
    from paddle.profiler.profiler_statistic import StatisticData

    data = StatisticData(prof.profiler_result.get_data(), prof.profiler_result.get_extra_info())
    return {name: (item.cpu_time / 1e6, item.call) for name, item in data.event_summary.items.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps, after two unprofiled warm-ups")
    parser.add_argument("--top", type=int, default=25, help="operators listed")
    args = parser.parse_args(argv)
    threads = configure_threads()
    case = Case("training", "FunnelForSequenceClassification", "small-base", args.seq)
    _, ours = reference_and_ours(case)
    step = paddle_train_step(ours, inputs_for(ours.config, args.seq))
    for _ in range(2):
        step()
    start = time.perf_counter()
    step()
    unprofiled = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)  # the profiler writes its trace files into the working directory
        try:
            prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU])
            prof.start()
            for _ in range(args.steps):
                step()
                prof.step()
            prof.stop()
            times = operator_times(prof)
        finally:
            os.chdir(here)
    per_step = {name: ms / args.steps for name, (ms, _) in times.items()}
    calls = {name: count / args.steps for name, (_, count) in times.items()}
    total = sum(per_step.values())
    matmul_ms = sum(per_step.get(name, 0.0) for name in MATRIX_PRODUCTS)
    rate = case_flops(case) / (matmul_ms / 1e3) / 1e9
    print(f"{case.label}, {threads} thread(s): one unprofiled step {unprofiled:.2f} s; profiled operator time "
          f"{total / 1e3:.2f} s per step, matrix products {matmul_ms / 1e3:.2f} s ({100 * matmul_ms / total:.0f}%, "
          f"{rate:.0f} GFLOP/s), everything else {(total - matmul_ms) / 1e3:.2f} s")
    for name, ms in sorted(per_step.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {name:50s} {ms:9.1f} ms per step  {100 * ms / total:5.1f}%  {calls[name]:6.0f} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
