"""Speed against the reference: transformers (PyTorch eager) vs paddlefunnel (dynamic graph, to_static, Paddle
Inference), side by side and interleaved, the reference and ours each in a worker process of its own, same
configuration, same weights, same inputs.

    .venv/bin/python benchmarks/bench.py              # every case; rewrites the Speed section of RESULTS.md
    .venv/bin/python benchmarks/bench.py --quick      # two cases, fewer repeats, prints only

Inference: FunnelBaseModel and FunnelModel, small and intermediate presets, batch 8, sequence 128 and 512.
Training: one AdamW step of FunnelForSequenceClassification (small-base), batch 8, sequence 128 and 512.
Each timing is the minimum over interleaved repeats (the implementations alternate, in alternating order),
after warm-up runs; ratios are reference time / our time (why a process per side: `SideWorkers`). Peak memory
is measured in a separate process per implementation (peak RSS above the process's size after imports). FLOPs come
from `paddlefunnel.modeling.flops`; the matmul ceiling is the best fp32 GEMM rate of either framework, measured in the
same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from results_file import write_section

import paddlefunnel  # noqa: F401,I001  (first: CPU math settings must precede Paddle's import)
import numpy as np
import paddle
import torch
import transformers

from paddlefunnel import FunnelConfig
from paddlefunnel.modeling.flops import funnel_cost
from paddlefunnel.runtime import release_freed_memory, reuse_freed_memory, use_all_cpu_cores
from paddlefunnel.training import AdamW

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Speed"
BATCH = 8
TRAIN_SEQS = (128, 512)


@dataclass(frozen=True)
class Case:
    kind: str  # "inference" or "training"
    architecture: str
    preset: str
    seq_len: int

    @property
    def label(self) -> str:
        what = "train step" if self.kind == "training" else "inference"
        return f"{self.architecture} {self.preset.split('/')[-1]}, {what}, {BATCH}x{self.seq_len}"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.architecture}:{self.preset}:{self.seq_len}"

    @classmethod
    def from_key(cls, key: str) -> "Case":
        kind, architecture, preset, seq_len = key.split(":")
        return cls(kind, architecture, preset, int(seq_len))


def all_cases() -> list[Case]:
    cases = []
    for preset in ("small", "intermediate"):
        for architecture in ("FunnelBaseModel", "FunnelModel"):
            for seq_len in (128, 512):
                cases.append(Case("inference", architecture, preset + ("-base" if "Base" in architecture else ""),
                                  seq_len))
    cases += [Case("training", "FunnelForSequenceClassification", "small-base", seq) for seq in TRAIN_SEQS]
    return cases


QUICK = [Case("inference", "FunnelBaseModel", "small-base", 128), Case("inference", "FunnelBaseModel", "small-base", 512)]
IMPL_NAMES = {"reference": "transformers (PyTorch eager)", "dynamic": "paddlefunnel dynamic graph",
              "to_static": "paddlefunnel to_static", "inference": "paddlefunnel Paddle Inference (oneDNN)",
              "reference_bf16": "transformers, bf16 autocast", "inference_bf16": "paddlefunnel Paddle Inference, bf16"}
# Each implementation is compared with the reference at its own precision.
BASELINE = {"reference_bf16": "reference_bf16", "inference_bf16": "reference_bf16"}


def bf16_is_fast() -> bool:
    """bf16 rows are measured only where the CPU has bf16 instructions (AVX512-BF16 / AMX)."""
    return bool(paddle.base.core.supports_bfloat16_fast_performance())


# ---------------------------------------------------------------------------------------------- setup
_THREADS: list[int] = []


def configure_threads(count: int | None = None) -> int:
    """Every core (or the user's OMP_NUM_THREADS, or `count`) for Paddle, the same count for PyTorch, and freed
    memory kept in the process for both (glibc would otherwise unmap and re-fault every large tensor; see
    runtime.py)."""
    count = use_all_cpu_cores(count)
    torch.set_num_threads(count)
    reuse_freed_memory()  # process-wide: the reference gets the same allocator behaviour as we do
    _THREADS[:] = [count]
    return count


def threads() -> int:
    return _THREADS[0] if _THREADS else configure_threads()


def inputs_for(config: FunnelConfig, seq_len: int, seed: int = 0, batch: int = BATCH) -> dict[str, np.ndarray]:
    """Sentence pairs filling the whole length: <cls> A <sep> B <sep>, token types 2 / 0 / 1."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(10, config.vocab_size, (batch, seq_len)).astype(np.int64)
    types = np.zeros((batch, seq_len), np.int64)
    types[:, seq_len // 2:] = 1
    types[:, 0] = 2
    return {"input_ids": ids, "attention_mask": np.ones((batch, seq_len), np.int64), "token_type_ids": types}


def reference_and_ours(case: Case):
    """The transformers model (random weights, seed 0) and ours holding the same weights (converted)."""
    from paddlefunnel.parity import convert_reference_model, make_reference_model

    transformers.logging.set_verbosity_error()
    config = FunnelConfig.from_preset(case.preset, num_labels=2)
    kwargs = {k: v for k, v in config.to_dict().items() if k != "architectures"}
    reference = make_reference_model(case.architecture, kwargs)
    ours = convert_reference_model(reference)
    return reference, ours


def main_output(out) -> object:
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def reference_inference_impls(reference, inputs: dict[str, np.ndarray]):
    """name -> callable returning the reference's main output as numpy (fp32, and bf16 autocast where fast)."""
    torch_inputs = {k: torch.tensor(v) for k, v in inputs.items()}

    def run_reference(bf16: bool = False):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return main_output(reference(**torch_inputs)).float().numpy()

    impls = {"reference": run_reference}
    if bf16_is_fast():
        impls["reference_bf16"] = lambda: run_reference(bf16=True)
    return impls


def paddle_inference_impls(ours, inputs: dict[str, np.ndarray], workdir: Path):
    """name -> callable returning our main output as numpy: dynamic graph, to_static, Paddle Inference."""
    from paddlefunnel.deploy import Predictor, export_model
    from paddlefunnel.deploy.export import INPUT_NAMES, static_model

    paddle_inputs = {k: paddle.to_tensor(v) for k, v in inputs.items()}
    model_dir, export_dir = workdir / "model", workdir / "export"
    ours.save_pretrained(model_dir)
    export_model(model_dir, export_dir, overwrite=True, quiet=True)  # checked against the dynamic graph
    predictors = {"inference": Predictor(export_dir, device="cpu", threads=threads(), batch_size=BATCH)}
    if bf16_is_fast():
        predictors["inference_bf16"] = Predictor(export_dir, device="cpu", threads=threads(), batch_size=BATCH,
                                                 precision="bf16")
    static = static_model(ours)

    def run_dynamic():
        with paddle.no_grad():
            return main_output(ours(**paddle_inputs)).numpy()

    def run_static():
        with paddle.no_grad():
            return static(*(paddle_inputs[name] for name in INPUT_NAMES))[0].numpy()

    def inference_runner(predictor):
        return lambda: next(iter(predictor.run(**inputs).values()))

    impls = {"dynamic": run_dynamic, "to_static": run_static}
    return impls | {name: inference_runner(predictor) for name, predictor in predictors.items()}


def reference_train_step(reference, inputs: dict[str, np.ndarray]):
    """One AdamW step of the transformers model (forward, loss, backward, update); returns the loss."""
    reference.train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-5)
    tensors = {k: torch.tensor(v) for k, v in inputs.items()}
    labels = torch.tensor(np.arange(BATCH) % 2)

    def step():
        loss = reference(**tensors, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return np.array(float(loss.detach()))

    return step


def paddle_train_step(model, inputs: dict[str, np.ndarray]):
    """The same step for paddlefunnel (dynamic graph; the Trainer's AdamW: Paddle's, with its CPU update in one
    multi-threaded pass)."""
    model.train()
    optimizer = AdamW(learning_rate=1e-5, parameters=model.parameters())
    tensors = {k: paddle.to_tensor(v) for k, v in inputs.items()}
    labels = paddle.to_tensor(np.arange(BATCH) % 2)

    def step():
        loss = model(**tensors, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.clear_grad(set_to_zero=False)  # what the Trainer does, and the reference's zero_grad() default
        return np.array(float(loss))

    return step


SIDES = ("reference", "paddlefunnel")


def side_impls(case: Case, side: str, workdir: Path) -> dict:
    """The timed callables of one side of a case, built in this process (same weights in every process)."""
    reference, ours = reference_and_ours(case)
    inputs = inputs_for(ours.config, case.seq_len)
    if case.kind == "training":
        return ({"reference": reference_train_step(reference, inputs)} if side == "reference"
                else {"dynamic": paddle_train_step(ours, inputs)})
    return (reference_inference_impls(reference, inputs) if side == "reference"
            else paddle_inference_impls(ours, inputs, workdir))


def _side_worker(case_key: str, side: str, thread_count: int, conn) -> None:
    """A spawned process holding one side's implementations; runs the one named in each request.

    The thread count comes from the parent: a spawned process inherits the OMP_NUM_THREADS=1 that `import paddle`
    put into the parent's environment and would read it as the user's choice (measured: both sides of every
    case then ran on one thread, the training step 4.5 s instead of 2.5 s).
    """
    configure_threads(thread_count)
    with tempfile.TemporaryDirectory() as tmp:
        impls = side_impls(Case.from_key(case_key), side, Path(tmp))
        conn.send(list(impls))
        while (name := conn.recv()) is not None:
            conn.send(impls[name]())


class SideWorkers:
    """The reference and paddlefunnel in worker processes of their own, each implementation callable from here.

    In one process the two frameworks' freed blocks interleave in the same heap, and the reference's training
    step kept writing to fresh pages after ours had run (measured at 8 x 512: 100-300k page faults and 14-22 s
    per reference step, against none and 11-12.5 s in a process of its own), which read as 1.19x for us; with a
    process each it was 0.98x (min) / 1.05x (median). Runs still alternate, so both sides share the machine's
    noise; the pipe round trip adds well under a millisecond to runs of 0.1 s and more.
    """

    def __init__(self, case: Case):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no heap or thread pool inherited
        self.workers: list = []
        self.impls: dict = {}
        try:
            for side in SIDES:  # built one after the other: building is not timed, but it loads the machine
                parent, child = context.Pipe()
                process = context.Process(target=_side_worker, args=(case.key, side, threads(), child), daemon=True)
                process.start()
                self.workers.append((process, parent))
                for name in parent.recv():
                    self.impls[name] = self._remote(parent, name)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _remote(conn, name: str):
        def run():
            conn.send(name)
            return conn.recv()
        return run

    def close(self) -> None:
        for process, conn in self.workers:
            try:
                conn.send(None)
            except OSError:
                pass
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
        self.workers.clear()

    def __enter__(self) -> "SideWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -------------------------------------------------------------------------------------------- timing
def busy_cores(interval: float = 2.0) -> float:
    """CPU cores kept busy by other processes (this one sleeps while it measures), from /proc/stat."""
    def snapshot() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = snapshot()
    time.sleep(interval)
    busy1, total1 = snapshot()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def wait_for_quiet_machine(threshold: float, max_wait: float) -> float:
    """Wait (up to `max_wait` s) until other processes use less than `threshold` cores; returns their usage."""
    deadline = time.monotonic() + max_wait
    usage = busy_cores()
    while usage >= threshold and time.monotonic() < deadline:
        usage = busy_cores(5.0)
    return usage


# Paddle's OpenMP runtime (Intel's libiomp5) keeps its worker threads spinning for KMP_BLOCKTIME (200 ms by
# default) after every parallel region. Timed right after Paddle, PyTorch's threads share the two cores with those
# spinners: measured here, a PyTorch matmul took 43 ms right after a Paddle matmul and 32 ms after a 0.3 s pause.
# Every timed call therefore starts after a pause longer than that, so no implementation pays for the previous one.
SETTLE_SECONDS = 0.3


def settle() -> None:
    time.sleep(SETTLE_SECONDS)


def interleaved_min(impls: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Minimum wall time of each implementation; they alternate, in alternating order, to share the noise."""
    for fn in impls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            settle()
            start = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def matmul_ceiling(repeats: int = 5) -> float:
    """Best fp32 GEMM rate (GFLOP/s) of PyTorch and Paddle on this machine, with the benchmark's threads."""
    best = 0.0
    for m, k, n in ((4096, 768, 3072), (2048, 2048, 2048)):
        a, b = np.random.rand(m, k).astype(np.float32), np.random.rand(k, n).astype(np.float32)
        ta, tb, pa, pb = torch.tensor(a), torch.tensor(b), paddle.to_tensor(a), paddle.to_tensor(b)
        impls = {"torch": lambda: ta @ tb, "paddle": lambda: paddle.matmul(pa, pb).numpy()}
        for seconds in interleaved_min(impls, repeats, warmup=1).values():
            best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def case_flops(case: Case) -> float:
    config = FunnelConfig.from_preset(case.preset)
    # The train step's FunnelForSequenceClassification runs its last layer for <cls> alone (first_token_only).
    forward = funnel_cost(config, case.seq_len, decoder=case.architecture == "FunnelModel", batch=BATCH,
                          first_token_only=case.kind == "training").flops
    return 3 * forward if case.kind == "training" else forward  # backward ~ 2 x forward


@dataclass
class Row:
    case: Case
    impl: str
    seconds: float
    ratio: float
    gflops: float
    max_diff: float | None
    peak_mib: float | None = None
    others: float | None = None  # CPU cores other processes used just before the case


def run_case(case: Case, repeats: int) -> list[Row]:
    with SideWorkers(case) as workers:
        impls = workers.impls
        # Reference first: "reference" leads the interleaving, as it always has.
        impls = {name: impls[name] for name in sorted(impls, key=lambda n: not n.startswith("reference"))}
        outputs = {name: fn() for name, fn in impls.items()} if case.kind == "inference" else {}
        best = interleaved_min(impls, repeats)
    flops = case_flops(case)
    rows = []
    for name, seconds in best.items():
        diff = None
        if outputs:
            ref = outputs["reference"]  # bf16 rows too: their difference is what bf16 costs
            diff = float(np.abs(outputs[name] - ref).max() / max(1.0, np.abs(ref).max()))
        ratio = best[BASELINE.get(name, "reference")] / seconds
        rows.append(Row(case, name, seconds, ratio, flops / seconds / 1e9, diff))
    return rows


# -------------------------------------------------------------------------------------------- memory
def _rss_mib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe_memory(case: Case, impl: str, export_dir: str | None) -> float:
    """Peak RSS (MiB) above the size after imports, building the model and running it twice."""
    configure_threads()
    baseline = _rss_mib("VmRSS")
    config = FunnelConfig.from_preset(case.preset, num_labels=2)
    inputs = inputs_for(config, case.seq_len)
    if impl in ("reference", "reference_bf16"):
        transformers.logging.set_verbosity_error()
        kwargs = {k: v for k, v in config.to_dict().items() if k != "architectures"}
        model = getattr(transformers, case.architecture)(transformers.FunnelConfig(**kwargs)).eval()
        if case.kind == "training":
            run = reference_train_step(model, inputs)
        else:
            tensors = {k: torch.tensor(v) for k, v in inputs.items()}

            def run():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=impl == "reference_bf16"):
                    model(**tensors)
    elif impl in ("inference", "inference_bf16"):
        from paddlefunnel.deploy import Predictor

        precision = "bf16" if impl == "inference_bf16" else "fp32"
        predictor = Predictor(export_dir, device="cpu", threads=threads(), batch_size=BATCH, precision=precision)

        def run():
            predictor.run(**inputs)
    else:
        model = _paddle_model(case, config)
        if case.kind == "training":
            run = paddle_train_step(model, inputs)
        elif impl == "to_static":
            from paddlefunnel.deploy.export import INPUT_NAMES, static_model

            static = static_model(model)
            tensors = [paddle.to_tensor(inputs[name]) for name in INPUT_NAMES]

            def run():
                with paddle.no_grad():
                    static(*tensors)[0].numpy()
        else:
            tensors = {k: paddle.to_tensor(v) for k, v in inputs.items()}

            def run():
                with paddle.no_grad():
                    main_output(model(**tensors)).numpy()
    run()
    run()
    return _rss_mib("VmHWM") - baseline


def _paddle_model(case: Case, config: FunnelConfig):
    from paddlefunnel import MODEL_CLASSES

    model = MODEL_CLASSES[case.architecture](config)
    model.eval()
    return model


def measure_memory(rows: list[Row], export_dirs: dict[str, str]) -> None:
    for row in rows:
        command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", row.case.key, row.impl]
        if row.impl.startswith("inference"):
            command.append(export_dirs[row.case.key])
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        row.peak_mib = json.loads(lines[-1])["peak_mib"] if done.returncode == 0 and lines else None
        if row.peak_mib is None:
            print(f"memory probe failed for {row.case.label} / {row.impl}: {done.stderr[-500:]}", file=sys.stderr)


def export_for_memory(case: Case, directory: Path) -> str:
    from paddlefunnel.deploy import export_model

    config = FunnelConfig.from_preset(case.preset, num_labels=2)
    _paddle_model(case, config).save_pretrained(directory / "model")
    export_model(directory / "model", directory / "export", overwrite=True, quiet=True, check_shapes=((1, 16),))
    return str(directory / "export")


# -------------------------------------------------------------------------------------------- report
def targets(rows: list[Row], ceiling: float) -> list[str]:
    """Each target of issue #6, met or missed, with the best ratio fp32 allows on this machine."""
    reference = {row.case: row for row in rows if row.impl == "reference"}
    lines = []
    for row in rows:
        case = row.case
        # An implementation running every counted FLOP at the matmul ceiling: the most any fp32 code can reach.
        bound = f"; at the matmul ceiling: {ceiling / reference[case].gflops:.2f}x"
        if row.impl == "dynamic":
            goal = "dynamic graph >= 1.0x"
            ok = row.ratio >= 1.0
        elif row.impl == "inference":
            need = 1.5 if case.seq_len == 128 else 2.0
            goal, ok = f"Paddle Inference >= {need}x", row.ratio >= need
        elif row.impl == "inference_bf16":
            fp32_ratio = reference[case].seconds / row.seconds
            lines.append(f"- {case.label}: Paddle Inference bf16 (no target): {row.ratio:.2f}x the reference in bf16 "
                         f"autocast, {fp32_ratio:.2f}x the fp32 reference, max diff {row.max_diff:.1e}")
            continue
        else:
            continue
        lines.append(f"- {case.label}: {goal}: {row.ratio:.2f}x, {'met' if ok else 'MISSED'}{bound}")
    for row in rows:
        if row.case.kind == "training" and row.impl == "dynamic":
            lines.append(f"- {row.case.label}: train step >= 1.3x (issue #16): {row.ratio:.2f}x, "
                         f"{'met' if row.ratio >= 1.3 else 'MISSED'}")
    for row in rows:
        if row.case == Case("inference", "FunnelBaseModel", "small-base", 512) and row.impl == "inference":
            share = 100 * row.gflops / ceiling
            lines.append(f"- FunnelBaseModel small-base, seq 512, Paddle Inference fp32 >= 90% of the matmul ceiling "
                         f"(issue #16): {share:.0f}%, {'met' if share >= 90 else 'MISSED'} (where the time goes: "
                         "benchmarks/profile_inference.py)")
    for row in rows:
        if row.case == Case("inference", "FunnelBaseModel", "small-base", 512) and row.impl in ("dynamic", "to_static",
                                                                                              "inference"):
            share = 100 * row.gflops / ceiling
            lines.append(f"- FunnelBaseModel small-base, seq 512, {row.impl}: {share:.0f}% of the matmul ceiling "
                         f"(target >= 60%): {'met' if share >= 60 else 'MISSED'}")
    return lines


def cpu_model() -> str:
    """The CPU's model name, for the results' header."""
    return next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor())


def report(rows: list[Row], ceiling: float, repeats: int, command: str, thread_count: int,
           load: tuple[float, float]) -> str:
    cpu = cpu_model()
    lines = [
        SECTION, "",
        f"Command: `{command}`", "",
        f"Measured {datetime.date.today().isoformat()} on {cpu}, {os.cpu_count()} cores shared with other work "
        f"(1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end: absolute numbers drift, "
        f"ratios are what counts), {thread_count} threads for both frameworks; Python "
        f"{platform.python_version()}, paddlepaddle {paddle.__version__}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}. fp32 unless the row says bf16, random weights (the reference's, converted), "
        f"sentence pairs filling the whole length. Time: minimum of {repeats} interleaved repeats after 2 warm-up "
        f"runs, each started after a {SETTLE_SECONDS} s pause (Paddle's OpenMP threads spin for 200 ms after each run "
        f"and would slow whatever runs next); the reference and paddlefunnel each in a worker process of its own, "
        f"driven alternately (in one process the reference's training step kept faulting in fresh pages after ours "
        f"had run). Ratio: reference time / our time, against the reference at the same precision (bf16 rows: "
        f"transformers under bf16 autocast). GFLOP/s: `paddlefunnel.modeling.flops` count (2 x multiply-adds of the "
        f"matrix products; the relative-position term counted as paddlefunnel computes it, banded from 256 keys on, "
        f"so at 512 tokens the reference does more work than it is credited with; training step = 3 x forward) / "
        f"time; 'at the matmul ceiling' = reference time / the time our count takes at the ceiling. Matmul "
        f"ceiling measured in the same run: {ceiling:.0f} GFLOP/s (best fp32 GEMM of either framework; bf16 rows can "
        f"exceed it). Peak memory: peak RSS above the process size after imports, one process per implementation, "
        f"model built and run twice. Max diff: largest |output - reference output| / max(1, max |reference "
        f"output|). Other load: CPU cores used by other processes just before the case (each case waits up to a "
        f"limit for a quiet machine).",
        "",
        "| case | implementation | tokens/s | vs reference | GFLOP/s | % of ceiling | peak memory MiB | max diff | "
        "other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        tokens = BATCH * row.case.seq_len / row.seconds
        memory = f"{row.peak_mib:.0f}" if row.peak_mib is not None else "-"
        diff = f"{row.max_diff:.1e}" if row.max_diff is not None else "-"
        others = f"{row.others:.2f}" if row.others is not None else "-"
        lines.append(f"| {row.case.label} | {IMPL_NAMES[row.impl]} | {tokens:,.0f} | {row.ratio:.2f}x | {row.gflops:.0f} | "
                     f"{100 * row.gflops / ceiling:.0f}% | {memory} | {diff} | {others} |")
    lines += ["", "Targets (issues #6 and #16):", *targets(rows, ceiling), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two cases, 3 repeats, no memory probes, print only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", action="append", default=[], metavar="TEXT",
                        help="only the cases whose label contains TEXT (repeatable; implies --no-write)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory probes")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    parser.add_argument("--quiet-threshold", type=float, default=0.3, metavar="CORES",
                        help="before each case, wait until other processes use fewer cores than this (default 0.3)")
    parser.add_argument("--max-wait", type=float, default=600, metavar="SECONDS",
                        help="longest wait for a quiet machine before a case runs anyway (default 600)")
    parser.add_argument("--probe-memory", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        case, impl, *rest = args.probe_memory
        print(json.dumps({"peak_mib": probe_memory(Case.from_key(case), impl, rest[0] if rest else None)}))
        return 0
    thread_count = configure_threads()
    load_start = os.getloadavg()[0]
    cases, repeats = (QUICK, 3) if args.quick else (all_cases(), args.repeats)
    if args.case:
        cases = [c for c in all_cases() if any(text in c.label for text in args.case)]
        args.no_write = True
    ceiling = 0.0
    rows: list[Row] = []
    for case in cases:
        # The ceiling is measured before every case and the best kept: other work on the machine comes and goes.
        others = wait_for_quiet_machine(args.quiet_threshold, args.max_wait)
        ceiling = max(ceiling, matmul_ceiling())
        print(f"other processes: {others:.2f} cores busy; matmul ceiling so far: {ceiling:.0f} GFLOP/s "
              f"({thread_count} threads)", flush=True)
        case_rows = run_case(case, repeats)
        release_freed_memory()  # the models of this case are gone; do not keep their memory for the next
        for row in case_rows:
            row.others = others
        for row in case_rows:
            print(f"{case.label:55s} {row.impl:10s} {BATCH * case.seq_len / row.seconds:8.0f} tok/s "
                  f"{row.ratio:5.2f}x {row.gflops:5.0f} GFLOP/s", flush=True)
        rows += case_rows
    ceiling = max(ceiling, matmul_ceiling())  # again at the end: the machine's load changes
    if not (args.quick or args.no_memory):
        with tempfile.TemporaryDirectory() as tmp:
            exports = {c.key: export_for_memory(c, Path(tmp) / str(i)) for i, c in enumerate(cases)
                       if c.kind == "inference"}
            measure_memory(rows, exports)
    command = " ".join([".venv/bin/python", "benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])])
    text = report(rows, ceiling, repeats, command, thread_count, (load_start, os.getloadavg()[0]))
    print(text)
    if not (args.quick or args.no_write):
        write_section(SECTION, text)
        print(f"updated the Speed section of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
