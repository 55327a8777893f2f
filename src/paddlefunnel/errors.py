"""The errors a user can cause, all under one base: the CLI catches `PaddleFunnelError` and nothing else.

A `PaddleFunnelError` means "the input is wrong" (a file, a field, an argument): its message names the file,
line, field or key and what was expected, and the CLI prints it as one line. Any other exception is a bug and
keeps its traceback. Each class also derives from the built-in exception it replaces (ValueError,
FileNotFoundError, ...), so code that caught those before still catches them.
"""

from __future__ import annotations

import os


class PaddleFunnelError(Exception):
    """Base of every user-facing error. `exit_code` is what the CLI exits with (2: bad input)."""

    exit_code = 2


class InputError(PaddleFunnelError, ValueError):
    """A value, argument, setting or file content that is not what was expected."""


class MissingFileError(PaddleFunnelError, FileNotFoundError):
    """A file or directory the user named (or that must sit beside one) does not exist."""


class OutputExistsError(PaddleFunnelError, FileExistsError):
    """An output location already holds something that would be replaced without --overwrite."""


class OutputError(PaddleFunnelError, OSError):
    """An output location that cannot be written (no permission, read-only, a file in the way, disk full); the
    message names the path and what was being written."""


class MissingDependencyError(PaddleFunnelError, ImportError):
    """An optional extra (torch, onnxruntime, ...) is needed for what was asked; the message says which."""


class WeightsError(InputError):
    """A weights file or directory that cannot be loaded as asked; the message names file and key."""


class DataFormatError(InputError):
    """A data file that does not have the expected layout; the message names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ExportError(PaddleFunnelError, RuntimeError):
    """An exported program (or ONNX file) does not reproduce the dynamic-graph model."""

    exit_code = 1


class NonFiniteLossError(PaddleFunnelError, RuntimeError):
    """Training diverged (loss inf or NaN); the last good checkpoint on disk is left untouched."""

    exit_code = 1
