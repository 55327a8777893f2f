"""`paddlefunnel` command line: the only part of the package that prints.

Each command group is a module with a `register(sub)` that adds its sub-commands, in order; shared options are
declared once in `options.py`. `main` is the one error handler: a `PaddleFunnelError` (bad input: a file, a
field, an argument) becomes one line on stderr and its exit code; any other exception is a bug and keeps its
traceback. The library's notes (the "paddlefunnel" logger) go to stderr while a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

import paddle

from ..errors import PaddleFunnelError
from ..modeling import cpu_kernels
from ..runtime import use_all_cpu_cores
from ..version import __version__
from . import checkpoints, demo, deploy, evaluate, predict, pretrain, train, vocab
from .options import StrictArgumentParser

# In the order `paddlefunnel --help` lists them: demo, train, predict, convert, compare, vocab, evaluate, export, flops.
COMMAND_GROUPS = (demo, train, pretrain, predict, checkpoints, vocab, evaluate, deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = StrictArgumentParser(prog="paddlefunnel", description="Funnel-Transformer for PaddlePaddle")
    parser.add_argument("--version", action="version",
                        version=f"paddlefunnel {__version__} (paddle {paddle.__version__}; C kernels: "
                                f"{cpu_kernels.describe()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with library_notes_to_stderr():
        try:
            if args.all_cores:  # training, evaluation, prediction, export: the job owns the machine
                use_all_cpu_cores()
            return int(args.func(args))
        except PaddleFunnelError as err:
            print(f"paddlefunnel {args.command}: error: {err}", file=sys.stderr)
            return err.exit_code


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (pytest's capsys replaces it per test)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property always answers sys.stderr
        pass


@contextlib.contextmanager
def library_notes_to_stderr() -> Iterator[None]:
    """INFO and above from the "paddlefunnel" logger on stderr, for the duration of one command.

    Not passed on to the root logger meanwhile: importing paddle puts a handler there, which would print every
    note a second time in Paddle's own format.
    """
    logger = logging.getLogger("paddlefunnel")
    handler, level, propagate = _StderrHandler(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
