"""`paddlefunnel export` (a checked static program for deployment) and `paddlefunnel flops` (what a size costs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import FunnelConfig
from ..deploy import ExportInfo, export_model
from ..deploy.export import export_report
from ..modeling.flops import format_comparison
from .options import add_command, add_overwrite


def register(sub: argparse._SubParsersAction) -> None:
    _add_export(sub)
    _add_flops(sub)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "export", run_export,
                    "static Paddle program (and ONNX) for deployment, checked against the model", all_cores=True)
    p.add_argument("model_dir", help="a model directory (config.json + weights; tokenizer and task files travel along)")
    p.add_argument("out_dir", help="export directory (created; must be empty unless --overwrite)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (needs the onnx extra) and check it")
    p.add_argument("--quantize", choices=["int8"],
                   help="int8: also write model.onnx and model.int8.onnx (ONNX Runtime dynamic quantization of the "
                        "matrix-product weights); serve it with `predict --precision int8`")
    add_overwrite(p, "OUT_DIR")


def run_export(args: argparse.Namespace) -> int:
    export_and_report(args.model_dir, args.out_dir, onnx=args.onnx, overwrite=args.overwrite, quantize=args.quantize)
    return 0


def export_and_report(model_dir: str | os.PathLike, out_dir: str | os.PathLike, onnx: bool = False,
                      overwrite: bool = False, quantize: str | None = None) -> ExportInfo:
    """`export_model`, then print what was checked and written (on stdout, where the command's output goes)."""
    info = export_model(model_dir, out_dir, onnx=onnx, overwrite=overwrite, quiet=True, quantize=quantize)
    for line in export_report(info, out_dir):
        print(line)
    return info


def _add_flops(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "flops", run_flops, "parameters and forward FLOPs of a configuration against a same-size BERT")
    p.add_argument("--preset", required=True, help="e.g. small, funnel-transformer/intermediate, or a config.json")
    p.add_argument("--seq", type=int, default=512, help="sequence length (default: 512)")
    p.add_argument("--batch", type=int, default=1, help="sequences per batch (default: 1)")


def run_flops(args: argparse.Namespace) -> int:
    source = Path(args.preset)
    config = FunnelConfig.from_pretrained(source) if source.exists() else FunnelConfig.from_preset(args.preset)
    print(format_comparison(args.preset, config, args.seq, args.batch))
    return 0
