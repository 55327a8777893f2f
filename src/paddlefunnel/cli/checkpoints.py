"""`paddlefunnel convert` (HuggingFace <-> Paddle layouts) and `paddlefunnel compare` (parity with transformers)."""

from __future__ import annotations

import argparse
import sys
import tempfile

from .. import parity
from ..checkpoint import convert_checkpoint
from ..config import FunnelConfig
from ..modeling.auto import model_class_for
from .options import add_batch_size, add_command, add_overwrite


def register(sub: argparse._SubParsersAction) -> None:
    _add_convert(sub)
    _add_compare(sub)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "convert", run_convert, "convert a checkpoint between HuggingFace and Paddle layouts")
    p.add_argument("src", help="model directory (paddlefunnel or HuggingFace) or weights file")
    p.add_argument("dst", help="output directory (created; must be empty unless --overwrite)")
    p.add_argument("--to", choices=["paddle", "hf"], default="paddle",
                   help="paddle: config.json + model.safetensors in Paddle layout (default); "
                        "hf: a directory transformers loads")
    add_overwrite(p, "DST")


def run_convert(args: argparse.Namespace) -> int:
    target = convert_checkpoint(args.src, args.dst, to=args.to, overwrite=args.overwrite,
                                model_class_for=model_class_for)
    architecture = model_class_for(FunnelConfig.from_pretrained(target)).__name__
    files = ", ".join(sorted(path.name for path in target.iterdir()))
    print(f"wrote {architecture} ({args.to} layout) to {target}: {files}")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "compare", run_compare,
                    "check paddlefunnel against transformers on a checkpoint (needs torch)", all_cores=True)
    p.add_argument("hf_dir", nargs="?", help="HuggingFace Funnel directory or hub name (org/name: from the "
                                             "HuggingFace cache, else downloaded); default: a random small model")
    p.add_argument("--revision", help="branch, tag or commit of a hub name (default: main)")
    p.add_argument("--seq-len", type=int, default=24)
    add_batch_size(p, 3)


def run_compare(args: argparse.Namespace) -> int:
    parity.require_reference()  # MissingDependencyError (says what to install) before any work
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = args.hf_dir or parity.demo_reference_directory(tmp)
        rows = parity.compare_checkpoint(hf_dir, batch_size=args.batch_size, seq_len=args.seq_len,
                                         revision=args.revision)
    print(f"checkpoint: {args.hf_dir or 'random small transformers FunnelModel'}; padded sentence-pair batch "
          f"{args.batch_size}x{args.seq_len}; tolerances: forward {parity.FORWARD_TOLERANCE:.0e} "
          f"(max abs diff / max(1, max|reference|)), backward {parity.BACKWARD_TOLERANCE:.0e} "
          f"(relative to each gradient's scale)")
    print(parity.format_table(rows))
    failed = [label for label, report in rows if not report.ok()]
    if not any(report.compared for _, report in rows):
        print("FAILED: no head could be compared (see the note column)", file=sys.stderr)
        return 1
    if failed:
        print(f"FAILED: {', '.join(failed)} above tolerance", file=sys.stderr)
        return 1
    print("all heads within tolerance")
    return 0
