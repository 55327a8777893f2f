"""Speed does not depend on import order: FunnelBaseModel small-base inference (batch 8 x 128) against the reference,
side by side in one process, for three ways a script can start.

    .venv/bin/python benchmarks/import_order.py [--repeats 10] [--write]

- `paddlefunnel first`: `import paddlefunnel` before anything else.
- `paddle first`: `import paddle`, then `import paddlefunnel` (what most Paddle users write).
- `paddle math first`: a Paddle matrix product runs before `import paddlefunnel`. MKL has then chosen its code path
  for the process; paddlefunnel cannot change it and warns (SlowMathWarning) with the fix. Shown for contrast.

Each order runs in a fresh process (the MKL code path is fixed per process); the reference (transformers, PyTorch
eager) runs in the same process, interleaved, so the ratio (reference time / our time) shares the machine's noise.
`--write` replaces the "Import order" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from results_file import write_section

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Import order"
ORDERS = ("paddlefunnel first", "paddle first", "paddle math first")

CHILD = """
import sys, warnings
order, repeats = sys.argv[1], int(sys.argv[2])
if order != "paddlefunnel first":
    import paddle
    if order == "paddle math first":
        paddle.matmul(paddle.ones([64, 64]), paddle.ones([64, 64])).numpy()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import paddlefunnel
import json
import paddle, torch
from paddlefunnel import runtime
sys.path.insert(0, sys.argv[3])
import bench

case = bench.Case("inference", "FunnelBaseModel", "small-base", 128)
bench.configure_threads()
reference, ours = bench.reference_and_ours(case)
inputs = bench.inputs_for(ours.config, case.seq_len)
torch_inputs = {k: torch.tensor(v) for k, v in inputs.items()}
paddle_inputs = {k: paddle.to_tensor(v) for k, v in inputs.items()}

def run_reference():
    with torch.no_grad():
        return reference(**torch_inputs).last_hidden_state.numpy()

def run_ours():
    with paddle.no_grad():
        return ours(**paddle_inputs).last_hidden_state.numpy()

times = bench.interleaved_min({"reference": run_reference, "ours": run_ours}, repeats)
slow = [str(w.message) for w in caught if issubclass(w.category, runtime.SlowMathWarning)]
print(json.dumps({"order": order, "mkl_path": runtime.mkl_code_path(), "warned": bool(slow), **times}))
"""


def measure(order: str, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, order, str(repeats), str(HERE)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{order}: the measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| import order | MKL code path | SlowMathWarning | reference ms | paddlefunnel ms | ratio |",
             "|---|---|---|---:|---:|---:|"]
    for row in rows:
        path = {0: "generic (slow)", 5: "AVX2"}.get(row["mkl_path"], str(row["mkl_path"]))
        lines.append(f"| {row['order']} | {path} | {'yes' if row['warned'] else 'no'} | "
                     f"{row['reference'] * 1000:.0f} | {row['ours'] * 1000:.0f} | "
                     f"{row['reference'] / row['ours']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="replace the Import order section of RESULTS.md")
    args = parser.parse_args()
    rows = [measure(order, args.repeats) for order in ORDERS]
    command = f"`.venv/bin/python benchmarks/import_order.py --repeats {args.repeats}`"
    text = (f"{SECTION}\n\nFunnelBaseModel small-base, batch 8 x 128, inference (dynamic graph) against transformers "
            f"in the same process; ratio = reference time / our time (minimum of {args.repeats} interleaved runs). "
            f"Measured with {command}.\n\n{table(rows)}\n")
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
