"""How inference time and memory grow with sequence length: FunnelBaseModel small-base (ours and the transformers
reference) against a transformers BertModel of the same width and depth (12 layers of 768, 12 heads, 3072 inner),
the comparison of the paper (Funnel's claim: less time than a standard Transformer of the same size).

    .venv/bin/python benchmarks/bench_scaling.py              # seq 128 512 1024 2048 x batch 1 8; rewrites its section
    .venv/bin/python benchmarks/bench_scaling.py --seq 128 512 --batch 8 --no-write

Random weights (ours converted from the reference's; BERT its own), sentence pairs filling the whole length,
fp32, no gradient. Time: minimum over interleaved repeats (the three implementations alternate, in alternating
order) after one warm-up each, in one process. Peak memory: one subprocess per implementation and shape, peak RSS
while running it twice above the size after building the model (peak count reset there: the weights are not
counted, activations are).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from results_file import write_section

import paddlefunnel  # noqa: F401,I001  (first: CPU math settings must precede Paddle's import)
import numpy as np
import paddle
import torch
import transformers

from bench import (Case, _rss_mib, configure_threads, cpu_model, inputs_for, interleaved_min, main_output,
                   reference_and_ours, wait_for_quiet_machine)
from paddlefunnel import FunnelConfig
from paddlefunnel.runtime import release_freed_memory

SECTION = "## Scaling with sequence length"
PRESET = "small-base"
IMPLS = ("ours", "reference", "bert")
IMPL_NAMES = {"ours": "paddlefunnel FunnelBaseModel (dynamic graph)", "reference": "transformers FunnelBaseModel",
              "bert": "transformers BertModel (same width, 12 layers)"}


def bert_model(max_length: int) -> torch.nn.Module:
    """A BertModel the size of small-base's blocks: 12 layers, d_model 768, 12 heads, d_inner 3072."""
    funnel = FunnelConfig.from_preset(PRESET)
    config = transformers.BertConfig(vocab_size=funnel.vocab_size, hidden_size=funnel.d_model,
                                     num_hidden_layers=sum(funnel.block_sizes), num_attention_heads=funnel.n_head,
                                     intermediate_size=funnel.d_inner, max_position_embeddings=max(512, max_length),
                                     type_vocab_size=3, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def runners(seq_len: int, batch: int, which: tuple[str, ...] = IMPLS) -> dict:
    """name -> callable running one forward pass and returning the last hidden state as numpy."""
    transformers.logging.set_verbosity_error()
    inputs = inputs_for(FunnelConfig.from_preset(PRESET), seq_len, batch=batch)
    torch_inputs = {k: torch.tensor(v) for k, v in inputs.items()}
    result = {}
    if "ours" in which or "reference" in which:
        reference, ours = reference_and_ours(Case("inference", "FunnelBaseModel", PRESET, seq_len))
        reference.eval()
        ours.eval()
        paddle_inputs = {k: paddle.to_tensor(v) for k, v in inputs.items()}

        def run_ours():
            with paddle.no_grad():
                return main_output(ours(**paddle_inputs)).numpy()

        def run_reference():
            with torch.no_grad():
                return main_output(reference(**torch_inputs)).numpy()

        result.update({"ours": run_ours, "reference": run_reference})
    if "bert" in which:
        bert = bert_model(seq_len)

        def run_bert():
            with torch.no_grad():
                return bert(**torch_inputs).last_hidden_state.numpy()

        result["bert"] = run_bert
    return {name: result[name] for name in which}


def reset_peak_rss() -> None:
    """Start the process's peak-RSS count (VmHWM) afresh: building the models (ours is converted from the
    reference's weights) peaks higher than a short forward pass, which would otherwise hide it."""
    Path("/proc/self/clear_refs").write_text("5")


def probe_memory(seq_len: int, batch: int, impl: str) -> float:
    configure_threads()
    run = runners(seq_len, batch, (impl,))[impl]
    release_freed_memory()  # what building freed goes back to the OS: the run must fault in what it needs
    reset_peak_rss()
    baseline = _rss_mib("VmRSS")
    run()
    run()
    return _rss_mib("VmHWM") - baseline


def measure_memory(seq_len: int, batch: int, impl: str) -> float | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", str(seq_len), str(batch), impl]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(f"memory probe failed for {impl} {batch}x{seq_len}: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])["peak_mib"]


def measure(seq_len: int, batch: int, repeats: int) -> dict:
    impls = runners(seq_len, batch)
    outputs = {name: impls[name]() for name in ("ours", "reference")}
    diff = float(np.abs(outputs["ours"] - outputs["reference"]).max())
    times = interleaved_min(impls, repeats, warmup=0)  # the output check above was each one's warm-up
    del impls, outputs
    release_freed_memory()
    return {"seconds": times, "max_diff": diff}


def report(rows: list[dict], command: str, threads: int, load: tuple[float, float]) -> str:
    cpu = cpu_model()
    lines = [
        SECTION, "",
        f"Command: `{command}`", "",
        f"Measured {datetime.date.today().isoformat()} on {cpu}, {os.cpu_count()} cores, {threads} threads for both "
        f"frameworks (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end); paddlepaddle "
        f"{paddle.__version__}, torch {torch.__version__}, transformers {transformers.__version__}. " + " ".join(
            __doc__.split("\n\n")[2].split()), "",
        "| batch x seq | " + " | ".join(f"{IMPL_NAMES[name]}: s (peak MiB)" for name in IMPLS)
        + " | ours vs reference | ours vs BERT | reference vs BERT | max diff ours - reference |",
        "|---|" + "---:|" * (len(IMPLS) + 4),
    ]
    for row in rows:
        seconds, memory = row["seconds"], row["peak_mib"]
        cells = [f"{seconds[name]:.3f} ({memory[name]:.0f})" if memory.get(name) is not None
                 else f"{seconds[name]:.3f} (-)" for name in IMPLS]
        ratios = [seconds["reference"] / seconds["ours"], seconds["bert"] / seconds["ours"],
                  seconds["bert"] / seconds["reference"]]
        lines.append(f"| {row['batch']}x{row['seq_len']} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{r:.2f}x" for r in ratios) + f" | {row['max_diff']:.1e} |")
    lines.append("")
    for row in rows:
        if row["seq_len"] == 512 and row["batch"] == 8:
            ratio = row["seconds"]["bert"] / row["seconds"]["ours"]
            lines.append(f"Target (issue #16): at 8x512 ours >= 1.5x the same-width BertModel: {ratio:.2f}x, "
                         f"{'met' if ratio >= 1.5 else 'MISSED'}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[128, 512, 1024, 2048])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory probes")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    parser.add_argument("--max-wait", type=float, default=300, metavar="SECONDS",
                        help="longest wait for a quiet machine (other processes < 0.3 cores) before each shape")
    parser.add_argument("--probe-memory", nargs=3, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        seq_len, batch, impl = args.probe_memory
        print(json.dumps({"peak_mib": probe_memory(int(seq_len), int(batch), impl)}))
        return 0
    threads = configure_threads()
    load_start = os.getloadavg()[0]
    rows = []
    for batch in args.batch:
        for seq_len in args.seq:
            others = wait_for_quiet_machine(0.3, args.max_wait)
            row = {"batch": batch, "seq_len": seq_len, "others": others, **measure(seq_len, batch, args.repeats)}
            row["peak_mib"] = {} if args.no_memory else {name: measure_memory(seq_len, batch, name) for name in IMPLS}
            print(json.dumps(row), flush=True)
            rows.append(row)
    command = " ".join([".venv/bin/python", "benchmarks/bench_scaling.py", *(argv if argv is not None else sys.argv[1:])])
    text = report(rows, command, threads, (load_start, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
