"""Where an exported model's time goes, by kind of operation: Paddle Inference (fp32, oneDNN) and onnxruntime (fp32
and int8). The measured explanation of the distance to the matmul ceiling that bench.py reports (issue #16).

    .venv/bin/python benchmarks/profile_inference.py [--seq 128 512] [--runs 6] [--write]

FunnelForSequenceClassification small-base (random weights), batch 8, sentence pairs filling the length, exported
as `paddlefunnel export --quantize int8` exports it, bench.py's threads (every core, or OMP_NUM_THREADS).
Paddle Inference: its own profiler (`Config.enable_profile`, run in a subprocess: it prints its table when the
predictor ends), whose totals cover every run; the first run (oneDNN primitive creation) is taken out by
subtracting a one-run profile. onnxruntime: its session profiler, the last run only. Run it with one thread
(OMP_NUM_THREADS=1): with two, Paddle's profiler reported about twice the wall time in its operators. Shares are
of the summed operator time.
Matrix-product rate (Paddle Inference only, whose program computes the position term in full form, as
`paddlefunnel.flops` counts it): the model's FLOPs over (the matrix products' share of the profiled operator time
x the fastest unprofiled run), against the best fp32 GEMM rate measured in the same run (bench.py's matmul
ceiling).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import BATCH, Case, case_flops, configure_threads, cpu_model, inputs_for, matmul_ceiling  # noqa: E402,I001
from bench import reference_and_ours  # noqa: E402
from results_file import write_section  # noqa: E402
import numpy as np  # noqa: E402

from paddlefunnel.deploy import export_model  # noqa: E402
from paddlefunnel.deploy.export import INT8_ONNX_FILE, ONNX_FILE  # noqa: E402

SECTION = "## Where inference time goes"
ARCHITECTURE, PRESET = "FunnelForSequenceClassification", "small-base"
# Operator names of both runtimes (Paddle's without its "onednn_op." / "pd_op." prefix) by kind.
KINDS = {
    "matrix products": {"fc", "matmul", "fused_matmul", "einsum", "MatMul", "FusedMatMul", "Gemm", "FusedGemm",
                        "Einsum", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger"},
    "copies (reshape, slice, concat, transpose, gather)": {
        "reshape", "slice", "strided_slice", "concat", "transpose", "stack", "index_select", "expand", "split",
        "Reshape", "Slice", "Concat", "Transpose", "Gather", "Expand", "Split", "Squeeze", "Unsqueeze"},
    "softmax": {"softmax", "Softmax"},
    "layer norm": {"layer_norm", "LayerNormalization", "SkipLayerNormalization"},
    "elementwise (add, scale, GELU, casts, quantize)": {
        "add", "multiply", "scale", "subtract", "gelu", "tanh", "cast", "fused_elementwise_add", "Add", "Mul", "Sub",
        "Div", "Gelu", "FastGelu", "BiasGelu", "Tanh", "Cast", "DynamicQuantizeLinear", "Where", "Equal"},
}
PADDLE_RUN = """
import sys, time, numpy as np
from paddle import inference
from paddlefunnel.deploy.runners import inference_config
from paddlefunnel.runtime import reuse_freed_memory
reuse_freed_memory()  # as Predictor does (without it, page faults on every large intermediate double the time)
arrays = np.load(sys.argv[2])
def run(predictor):
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).copy_from_cpu(arrays[name])
    start = time.perf_counter()
    predictor.run()
    return time.perf_counter() - start
if int(sys.argv[5]):
    plain = inference.create_predictor(inference_config(sys.argv[1], threads=int(sys.argv[3])))
    print("WALL", min(run(plain) for _ in range(int(sys.argv[5]))))
config = inference_config(sys.argv[1], threads=int(sys.argv[3]))
config.enable_profile()
profiled = inference.create_predictor(config)
for _ in range(int(sys.argv[4])):
    run(profiled)
"""


def kind_of(op: str) -> str:
    return next((kind for kind, ops in KINDS.items() if op in ops), "other")


def paddle_profile_table(export_dir: Path, inputs: dict, threads: int, runs: int,
                         wall_runs: int) -> tuple[Counter, float | None]:
    """Paddle Inference's own per-operator totals (ms over `runs` runs) from its profiler's first summary table,
    and the fastest of `wall_runs` runs of an unprofiled predictor (s; None without any)."""
    with tempfile.TemporaryDirectory(prefix="profile_paddle.") as workdir:  # the profiler writes profile.log there
        arrays = Path(workdir) / "inputs.npz"
        np.savez(arrays, **inputs)
        done = subprocess.run([sys.executable, "-c", PADDLE_RUN, str(export_dir), str(arrays), str(threads),
                               str(runs), str(wall_runs)], capture_output=True, text=True, check=True, cwd=workdir)
    totals: Counter = Counter()
    lines = (done.stdout + done.stderr).splitlines()
    start = next(i for i, line in enumerate(lines) if "Event Summary" in line)
    for line in lines[start + 3:]:
        if "Event Summary" in line:
            break
        fields = line.split()
        if len(fields) >= 3 and not line.startswith(" ") and fields[0].startswith(("onednn_op.", "pd_op.")):
            totals[fields[0].split(".", 1)[1].rstrip("_")] += float(fields[2])
    wall = next((float(line.split()[1]) for line in lines if line.startswith("WALL ")), None)
    return totals, wall


def paddle_operator_ms(export_dir: Path, inputs: dict, threads: int, runs: int) -> tuple[dict[str, float], float]:
    """Per-operator ms of one steady run: a `runs`-run profile minus a one-run profile (the first run creates
    oneDNN's primitives and is much slower), over runs - 1; and the unprofiled wall time (s, fastest run)."""
    many, wall = paddle_profile_table(export_dir, inputs, threads, runs, wall_runs=runs)
    first, _ = paddle_profile_table(export_dir, inputs, threads, 1, wall_runs=0)
    return {op: max(ms - first.get(op, 0.0), 0.0) / (runs - 1) for op, ms in many.items()}, wall


def onnx_operator_ms(path: Path, inputs: dict, threads: int, runs: int) -> dict[str, float]:
    """onnxruntime's per-operator kernel time (ms) in the last of `runs` runs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="ort_profile.") as workdir:
        options.profile_file_prefix = str(Path(workdir) / "run")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {i.name: inputs[i.name] for i in session.get_inputs()}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    last = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-1]
    totals: Counter = Counter()
    for event in events:
        if (event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
                and last["ts"] <= event["ts"] <= last["ts"] + last["dur"]):
            totals[event["args"]["op_name"]] += event["dur"] / 1000
    return dict(totals)


def shares(operator_ms: dict[str, float]) -> tuple[dict[str, float], float]:
    """Time share of each kind in KINDS (operators in none of them: "other"), and the total ms."""
    total = sum(operator_ms.values())
    by_kind: Counter = Counter()
    for op, ms in operator_ms.items():
        by_kind[kind_of(op)] += ms / total
    return dict(by_kind), total


def profile(seq: int, runs: int, threads: int, ceiling: float) -> list[str]:
    case = Case("inference", ARCHITECTURE, PRESET, seq)
    _, ours = reference_and_ours(case)
    inputs = inputs_for(ours.config, seq)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(Path(tmp) / "model")
        export_dir = Path(tmp) / "export"
        export_model(Path(tmp) / "model", export_dir, quantize="int8", quiet=True, check_shapes=((1, 16),))
        paddle_ms, paddle_wall = paddle_operator_ms(export_dir, inputs, threads, runs)
        measured = {"Paddle Inference fp32": paddle_ms,
                    "onnxruntime fp32": onnx_operator_ms(export_dir / ONNX_FILE, inputs, threads, runs),
                    "onnxruntime int8": onnx_operator_ms(export_dir / INT8_ONNX_FILE, inputs, threads, runs)}
    for runtime, operator_ms in measured.items():
        by_kind, total = shares(operator_ms)
        cells = " | ".join(f"{100 * by_kind.get(kind, 0.0):.1f}%" for kind in [*KINDS, "other"])
        wall = rate = ""
        if runtime.startswith("Paddle"):  # the profiler's own overhead inflates op times: rate from wall time
            gflops = case_flops(case) / (paddle_wall * by_kind["matrix products"]) / 1e9
            wall = f"{1000 * paddle_wall:,.0f}"
            rate = f"{gflops:.0f} GFLOP/s ({100 * gflops / ceiling:.0f}% of {ceiling:.0f})"
        lines.append(f"| {BATCH} x {seq} | {runtime} | {total:,.0f} | {wall} | {cells} | {rate} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--runs", type=int, default=6, help="runs per runtime (at least 2)")
    parser.add_argument("--write", action="store_true", help=f"replace RESULTS.md's {SECTION!r} section")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs: at least 2 (the first run is subtracted from Paddle's profile)")
    threads = configure_threads()
    ceiling = matmul_ceiling()
    header = ("| batch x seq | runtime | operator ms per run (profiled) | wall ms (unprofiled) | "
              + " | ".join([*KINDS, "other"]) + " | matrix products' rate |")
    rows = [header, "|---|---|---:|---:|" + "---:|" * (len(KINDS) + 1) + "---|"]
    for seq in args.seq:
        rows += profile(seq, args.runs, threads, ceiling)
    command = "OMP_NUM_THREADS=%d .venv/bin/python benchmarks/profile_inference.py %s" % (
        threads, " ".join(sys.argv[1:]).replace("--write", "").strip())
    text = "\n".join([
        SECTION, "", f"Command: `{command.strip()}`", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu_model()}, {threads} thread(s); {ARCHITECTURE} {PRESET}, "
        "random weights, exported with `--quantize int8` (see the script's docstring for what each column counts).",
        "", *rows, ""])
    print(text)
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
