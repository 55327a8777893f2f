"""The banded relative-position term against the full-then-shift one it replaced: the term alone and the whole
FunnelBaseModel small-base (random weights), forward and forward + backward, time and peak memory.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_positions.py            # prints the tables
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_positions.py --write    # and rewrites its RESULTS.md section
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_positions.py --term-seqs --model --no-memory \
        --export 8x128 8x512 --export-backends paddle onnx int8     # exported programs only

"old" is the full form (`positions.full_relative_scores`), "new" what the model runs (`relative_position_scores`:
banded from `BAND_MIN_KEYS` keys on). For the whole model, "old" is the same model with `BAND_MIN_KEYS` raised
past every length, so both run in one process. Times: median of interleaved repeats (old and new alternate, in
alternating order) after one warm-up each. Exported programs (`--export`): "old" is the program traced with
`positions.TRACED_BAND` off (the full form: `export`'s default), "new" with it on (the band, computed by the program).
Peak memory: one subprocess per implementation and case, peak RSS above
the size after building the model, running it twice.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from results_file import write_section

import paddlefunnel  # noqa: F401,I001  (first: CPU math settings must precede Paddle's import)
import numpy as np
import paddle

from paddlefunnel import FunnelBaseModel, FunnelConfig
from paddlefunnel.deploy.export import INT8_ONNX_FILE, ONNX_FILE, export_onnx, quantize_onnx_int8, static_model
from paddlefunnel.deploy.runners import PROGRAM_NAME, OnnxRunner, PaddleInferenceRunner
from paddlefunnel.modeling import positions
from paddlefunnel.runtime import release_freed_memory, reuse_freed_memory, use_all_cpu_cores

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Banded relative-position term"
PRESET = "small-base"
NEVER = 10**9  # BAND_MIN_KEYS that turns banding off: the old model


def configure() -> int:
    threads = use_all_cpu_cores()
    reuse_freed_memory()
    return threads


def median_interleaved(impls: dict, repeats: int) -> dict[str, float]:
    """Median seconds per implementation; they alternate, in alternating order, to share the machine's noise."""
    for fn in impls.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            time.sleep(0.3)  # Paddle's OpenMP threads spin for 200 ms after a run
            start = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


# ----------------------------------------------------------------------------------------- the term alone
def term_shapes(seq_len: int) -> list[tuple[int, int, int]]:
    """(Lq, Lk, shift) of the largest position terms of the model at `seq_len`: block 0's self-attention and the
    pooling layer that follows it (pooled queries against the full keys; separate_cls + truncate_seq lengths)."""
    pooled = positions.pooled_grid(positions.PositionGrid(0, 1, seq_len), True, True).count
    return [(seq_len, seq_len, 1), (pooled, seq_len, 2)]


def term_case(batch: int, q_len: int, context_len: int, shift: int, backward: bool, repeats: int) -> dict:
    config = FunnelConfig.from_preset(PRESET)
    n_head, d_head = config.n_head, config.d_head
    rng = np.random.default_rng(0)
    q = paddle.to_tensor(rng.standard_normal((batch, n_head, q_len, d_head)).astype("float32") * 0.1)
    r = paddle.to_tensor(rng.standard_normal((1, n_head, shift * q_len + context_len, d_head)).astype("float32"))
    q.stop_gradient = r.stop_gradient = not backward

    def runner(fn):
        def run():
            out = fn(q, r, context_len, shift)
            if backward:
                out.sum().backward()
                q.clear_gradient()
                r.clear_gradient()
            return out
        return run

    old, new = runner(positions.full_relative_scores), runner(positions.relative_position_scores)
    with contextlib.nullcontext() if backward else paddle.no_grad():
        diff = float(np.abs(old().numpy() - new().numpy()).max())
        seconds = median_interleaved({"old": old, "new": new}, repeats)
    chunk = positions.band_chunk(q_len, context_len)
    padded = q_len if chunk is None else -(-q_len // chunk) * chunk
    width = shift * q_len + context_len if chunk is None else shift * chunk + context_len
    return {"batch": batch, "q_len": q_len, "context_len": context_len, "shift": shift, "backward": backward,
            "old_s": seconds["old"], "new_s": seconds["new"], "max_diff": diff, "chunk": chunk,
            "old_mib": batch * n_head * q_len * (shift * q_len + context_len) * 4 / 2**20,
            "new_mib": batch * n_head * padded * width * 4 / 2**20}


# ----------------------------------------------------------------------------------------- the whole model
def small_base_model() -> FunnelBaseModel:
    paddle.seed(0)
    model = FunnelBaseModel(FunnelConfig.from_preset(PRESET))
    model.eval()  # no dropout: old and new see the same computation
    return model


def input_arrays(batch: int, seq_len: int, vocab_size: int) -> dict[str, np.ndarray]:
    """Sentence pairs filling the length (token types 2, 0..0, 1..1), no padding."""
    rng = np.random.default_rng(0)
    types = np.zeros((batch, seq_len), np.int64)
    types[:, seq_len // 2:] = 1
    types[:, 0] = 2
    return {"input_ids": rng.integers(10, vocab_size, (batch, seq_len)), "token_type_ids": types,
            "attention_mask": np.ones((batch, seq_len), np.int64)}


def model_and_inputs(seq_len: int, batch: int):
    model = small_base_model()
    arrays = input_arrays(batch, seq_len, model.config.vocab_size)
    return model, {name: paddle.to_tensor(value) for name, value in arrays.items()}


def model_runner(model, inputs, banded: bool, backward: bool):
    def run():
        positions.BAND_MIN_KEYS = DEFAULT_MIN_KEYS if banded else NEVER
        try:
            if not backward:
                with paddle.no_grad():
                    return model(**inputs).last_hidden_state.numpy()
            out = model(**inputs).last_hidden_state
            out.mean().backward()
            grad = model.encoder.blocks[0][0].attention.r_kernel.grad.numpy().copy()
            model.clear_gradients()
            return np.concatenate([out.numpy().ravel(), grad.ravel()])
        finally:
            positions.BAND_MIN_KEYS = DEFAULT_MIN_KEYS
    return run


DEFAULT_MIN_KEYS = positions.BAND_MIN_KEYS


def model_case(seq_len: int, batch: int, backward: bool, repeats: int) -> dict:
    model, inputs = model_and_inputs(seq_len, batch)
    old, new = model_runner(model, inputs, False, backward), model_runner(model, inputs, True, backward)
    a, b = old(), new()
    diff = float(np.abs(a - b).max() / max(1.0, np.abs(a).max()))
    seconds = median_interleaved({"old": old, "new": new}, repeats)
    return {"seq_len": seq_len, "batch": batch, "backward": backward, "old_s": seconds["old"],
            "new_s": seconds["new"], "max_diff": diff}


def _rss_mib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe_memory(seq_len: int, batch: int, backward: bool, banded: bool) -> float:
    configure()
    model, inputs = model_and_inputs(seq_len, batch)
    baseline = _rss_mib("VmRSS")
    run = model_runner(model, inputs, banded, backward)
    run()
    run()
    return _rss_mib("VmHWM") - baseline


def measure_memory(row: dict) -> None:
    for impl in ("old", "new"):
        command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", str(row["seq_len"]),
                   str(row["batch"]), str(int(row["backward"])), str(int(impl == "new"))]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        row[f"{impl}_mib"] = json.loads(lines[-1])["peak_mib"] if done.returncode == 0 and lines else None
        if row[f"{impl}_mib"] is None:
            print(f"memory probe failed: {command[2:]}: {done.stderr[-300:]}", file=sys.stderr)


# ----------------------------------------------------------------------------------------- exported programs
EXPORT_BACKENDS = ("paddle", "onnx", "int8")


def export_variant(model, directory: Path, banded: bool, backends: list[str]) -> None:
    """The program (`paddlefunnel export`'s tracing) and, for onnx / int8, the ONNX file(s), in `directory`."""
    with positions.traced_band(banded), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensor do not have", category=UserWarning)
        paddle.jit.save(static_model(model), str(directory / PROGRAM_NAME))
        if "onnx" in backends or "int8" in backends:
            export_onnx(model, directory, rank=2, banded=banded)
        if "int8" in backends:
            quantize_onnx_int8(directory / ONNX_FILE, directory / INT8_ONNX_FILE)


def export_runner(directory: Path, backend: str, threads: int):
    if backend == "paddle":
        return PaddleInferenceRunner(directory, threads=threads).run
    return OnnxRunner(directory / (ONNX_FILE if backend == "onnx" else INT8_ONNX_FILE), threads=threads).run


def export_cases(cases: list[str], backends: list[str], threads: int, repeats: int) -> list[dict]:
    """Old (full form) vs new (banded) exported small-base FunnelBaseModel, per backend and batch x seq."""
    shapes = [parse_case(text)[:2] for text in cases]
    model = small_base_model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"old": Path(tmp) / "old", "new": Path(tmp) / "new"}
        for name, directory in dirs.items():
            directory.mkdir()
            export_variant(model, directory, name == "new", backends)
        for backend in backends:
            runners = {name: export_runner(directory, backend, threads) for name, directory in dirs.items()}
            for batch, seq_len in shapes:
                inputs = input_arrays(batch, seq_len, model.config.vocab_size)
                outs = {name: run(inputs)[0] for name, run in runners.items()}
                diff = float(np.abs(outs["old"] - outs["new"]).max() / max(1.0, np.abs(outs["old"]).max()))
                seconds = median_interleaved({name: (lambda run=run: run(inputs)) for name, run in runners.items()},
                                             repeats)
                row = {"backend": backend, "batch": batch, "seq_len": seq_len, "old_s": seconds["old"],
                       "new_s": seconds["new"], "max_diff": diff}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------- report
def _mib(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(old, new) -> str:
    return "-" if old is None or new is None or new <= 0 else f"{old / new:.2f}x"


def _speedup(old, new, banded: bool) -> str:
    return f"**{_ratio(old, new)}**" if banded else f"{_ratio(old, new)} (same code)"


def report(terms: list[dict], models: list[dict], command: str, threads: int, repeats: int,
           load: tuple[float, float], exports: list[dict] | None = None) -> str:
    when = datetime.date.today().isoformat()
    lines = [
        SECTION, "",
        f"Command: `{command}`", "",
        f"Measured {when} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
        f"work (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end: absolute times drift, "
        f"ratios are what counts), {threads} Paddle thread(s), paddlepaddle {paddle.__version__}, fp32. "
        f"Time: median of {repeats} interleaved repeats after a warm-up. Ratio: old time / new time (> 1: the "
        f"banded form is faster). old = score every query against all shift x Lq + Lk distances, then shift; "
        f"new = `relative_position_scores` as the model runs it (banded in chunks of {positions.BAND_CHUNK} "
        f"queries from {positions.BAND_MIN_KEYS} keys on, {2 * positions.BAND_CHUNK} from "
        f"{positions.BAND_TALL_FROM} keys on, the full form below). Rows marked *same code* run the full form in "
        f"both (fewer than {positions.BAND_MIN_KEYS} keys everywhere): their ratios show the measurement noise.", "",
        "### The term alone (small-base shapes: 12 heads x 64; shift 2 = the pooling layer's pooled queries)", "",
        "Memory: size of the score buffer the term computes before the shift ([B, H, Lq, shift Lq + Lk] old; "
        "[B, H, Lq rounded up to chunks, shift c + Lk] new).", "",
        "| batch | Lq x Lk | shift | pass | old ms | new ms | speed-up | old buffer MiB | new buffer MiB | "
        "max diff |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in terms:
        lines.append(f"| {t['batch']} | {t['q_len']} x {t['context_len']} | {t['shift']} | "
                     f"{'fwd+bwd' if t['backward'] else 'fwd'} | {t['old_s'] * 1e3:,.1f} | {t['new_s'] * 1e3:,.1f} | "
                     f"{_speedup(t['old_s'], t['new_s'], t['chunk'] is not None)} | {_mib(t['old_mib'])} | {_mib(t['new_mib'])} | "
                     f"{t['max_diff']:.1e} |")
    lines += [
        "", f"### FunnelBaseModel {PRESET} (random weights, eval mode, sentence pairs filling the length)", "",
        "Peak memory: peak RSS above the size after building the model, one process per implementation, run "
        "twice. Max diff: largest |old - new| over max(1, max |old|) (forward: the last hidden state; fwd+bwd: "
        "that and the gradient of block 0's first r_kernel).", "",
        "| batch x seq | pass | old s | new s | speed-up | old peak MiB | new peak MiB | memory ratio | max diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        lines.append(f"| {m['batch']} x {m['seq_len']} | {'fwd+bwd' if m['backward'] else 'fwd'} | "
                     f"{m['old_s']:.3f} | {m['new_s']:.3f} | "
                     f"{_speedup(m['old_s'], m['new_s'], m['seq_len'] >= positions.BAND_MIN_KEYS)} | "
                     f"{_mib(m.get('old_mib'))} | {_mib(m.get('new_mib'))} | "
                     f"{_ratio(m.get('old_mib'), m.get('new_mib'))} | {m['max_diff']:.1e} |")
    if exports:
        lines += [
            "", f"### Exported FunnelBaseModel {PRESET} (dynamic sequence length, as `paddlefunnel export` traces it)",
            "", "old = the program traced with the full form (`positions.TRACED_BAND` off, the default); new = banded "
            "with the chunk count, padding and window rows computed by the program. paddle = Paddle Inference fp32 "
            "(oneDNN), onnx = onnxruntime fp32, int8 = the `--quantize int8` file. Max diff: largest |old - new| over "
            "max(1, max |old|).",
            "", "| backend | batch x seq | old s | new s | speed-up | max diff |", "|---|---|---:|---:|---:|---:|",
        ]
        for e in exports:
            lines.append(f"| {e['backend']} | {e['batch']} x {e['seq_len']} | {e['old_s']:.3f} | {e['new_s']:.3f} | "
                         f"**{_ratio(e['old_s'], e['new_s'])}** | {e['max_diff']:.1e} |")
    lines += [
        "", "Where the time goes: the banded form computes shift x c + Lk scores per query instead of shift x Lq + "
        "Lk and copies a buffer of that size twice in the shift; it pays for a gather of the chunks' (overlapping) "
        "windows of the distance table, and in backward for the scatter-add of the windows' gradients back into the "
        "table's. Programs traced "
        "for a dynamic sequence length (`export`) keep the full form unless `positions.TRACED_BAND` is on (see "
        "`positions.TRACED_BAND` for why).",
    ]
    return "\n".join(lines) + "\n"


def parse_case(text: str) -> tuple[int, int, bool]:
    """'8x512' (forward) or '8x512:bwd' (forward + backward) -> (batch, seq, backward)."""
    shape, _, mode = text.partition(":")
    batch, seq = shape.split("x")
    return int(batch), int(seq), mode == "bwd"


DEFAULT_MODEL_CASES = ["1x128", "8x128", "1x512", "8x512", "1x1024", "1x2048",
                       "1x128:bwd", "8x128:bwd", "1x512:bwd", "1x1024:bwd"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--term-seqs", type=int, nargs="*", default=[128, 512, 1024, 2048])
    parser.add_argument("--term-batches", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--term-max-backward-tokens", type=int, default=8192, metavar="N",
                        help="time the term's backward only where batch x seq <= N (default 8192)")
    parser.add_argument("--model", nargs="*", default=DEFAULT_MODEL_CASES, metavar="BxS[:bwd]",
                        help="whole-model cases, e.g. 8x512 (forward) or 8x512:bwd (forward + backward)")
    parser.add_argument("--export", nargs="*", default=[], metavar="BxS",
                        help="exported-program cases (old: traced full form, new: traced band), e.g. 8x128 8x512")
    parser.add_argument("--export-backends", nargs="*", default=["paddle"], choices=EXPORT_BACKENDS)
    parser.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory probes")
    parser.add_argument("--write", action="store_true", help="rewrite this benchmark's section of RESULTS.md")
    parser.add_argument("--probe-memory", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        seq_len, batch, backward, banded = args.probe_memory
        print(json.dumps({"peak_mib": probe_memory(seq_len, batch, bool(backward), bool(banded))}))
        return 0
    threads = configure()
    load_start = os.getloadavg()[0]
    terms = []
    for seq_len in args.term_seqs:
        for batch in args.term_batches:
            for q_len, context_len, shift in term_shapes(seq_len):
                for backward in (False, True) if batch * seq_len <= args.term_max_backward_tokens else (False,):
                    row = term_case(batch, q_len, context_len, shift, backward, args.repeats)
                    print(json.dumps(row), flush=True)
                    terms.append(row)
                    release_freed_memory()
    models = []
    for text in args.model:
        batch, seq_len, backward = parse_case(text)
        row = model_case(seq_len, batch, backward, args.repeats)
        release_freed_memory()
        if not args.no_memory:
            measure_memory(row)
        print(json.dumps(row), flush=True)
        models.append(row)
    exports = export_cases(args.export, args.export_backends, threads, args.repeats) if args.export else []
    command = " ".join(["OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "(all)"), ".venv/bin/python",
                        "benchmarks/bench_positions.py", *(argv if argv is not None else sys.argv[1:])])
    text = report(terms, models, command, threads, args.repeats, (load_start, os.getloadavg()[0]), exports)
    print(text)
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
