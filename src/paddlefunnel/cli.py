"""`paddlefunnel` command line: one sub-command per job, each registered by an `_add_*` function below."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def use_all_cpu_cores() -> None:
    """Paddle's dynamic graph runs one CPU thread unless told otherwise; CLI jobs should use the machine."""
    import os

    import paddle

    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    paddle.base.core.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddlefunnel", description="Funnel-Transformer for PaddlePaddle")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        # User-facing errors already name the file/field; no traceback for them.
        print(f"paddlefunnel {args.command}: error: {err}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------------------------------ sub-commands
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in end-to-end demo (no downloads)")
    p.add_argument("--out", default="demo_output", help="directory for everything the demo writes")

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        use_all_cpu_cores()
        return run_demo(args.out)

    p.set_defaults(func=run)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_demo,
]

if __name__ == "__main__":
    sys.exit(main())
