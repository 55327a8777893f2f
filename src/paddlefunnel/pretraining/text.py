"""Raw corpus reading for pretraining: plain text files (`.gz` decompressed on the fly) streamed as documents.

Layout, as the authors' data builder (laiguokun/Funnel-Transformer, `tensorflow/create_pretrain_data.py`) reads
it: one sentence per line, documents separated by blank lines. `doc_per_file=True` makes each file one document
(blank lines then only end paragraphs). Lines are stripped; empty lines never make sentences.

Memory stays bounded whatever the corpus size: files are read line by line, and a document that grows beyond
`MAX_DOCUMENT_BYTES` (one huge file read with `doc_per_file`, or a corpus without blank lines) is handed out in
consecutive parts of whole sentences. Only document-level shuffling sees the parts as separate units.

A line that is not UTF-8 is an error naming the file, line and byte offset (of the decompressed text for `.gz`);
with `skip_bad_lines` such lines are dropped and counted instead. Each file's bytes on disk are hashed while they
are read, so the manifest can identify the corpus without a second pass.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError, InputError, MissingFileError

MAX_DOCUMENT_BYTES = 1 << 20  # a longer document is handed out in parts (bounded memory, see the module docstring)
_HASH_CHUNK = 1 << 20


@dataclass
class Document:
    """The sentences (non-empty, stripped lines) of one document, or of one part of a very long one."""

    sentences: list[str]
    continued: bool = False  # True for the second and later parts of a document split by MAX_DOCUMENT_BYTES


@dataclass
class SkippedLine:
    path: str
    line: int
    byte_in_file: int


@dataclass
class ReadStats:
    """What reading found, for the manifest and the summary."""

    documents: int = 0
    lines: int = 0
    bad_lines: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)  # the first few, to name in notes
    bytes_done: int = 0  # bytes of the files on disk consumed so far (progress)


class _HashingReader(io.RawIOBase):
    """A raw binary stream that hashes and counts the bytes read through it (the file as it lies on disk)."""

    def __init__(self, handle: io.BufferedReader) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        size = self._handle.readinto(buffer)
        if size:
            view = memoryview(buffer)[:size]
            self.digest.update(view)
            self.count += size
        return size or 0

    def close(self) -> None:
        self._handle.close()
        super().close()


def is_gzip(path: str | os.PathLike) -> bool:
    return str(path).endswith(".gz")


def check_corpus_files(files: Sequence[str | os.PathLike]) -> list[Path]:
    """The corpus files as Paths: at least one, each an existing file."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    if not files:
        raise InputError("no corpus files given; expected one or more text files (.txt, .gz)")
    paths = []
    for item in files:
        path = Path(item)
        if not path.exists():
            raise MissingFileError(f"{path}: corpus file not found")
        if not path.is_file():
            raise InputError(f"{path}: a corpus file must be a text file, not a directory")
        paths.append(path)
    return paths


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes on disk (what `read_documents` records while reading)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class CorpusReader:
    """Streams the documents of several files; `stats` and `hashes` fill in as it goes.

    One reader, one pass: iterate `documents()` once.
    """

    def __init__(self, files: Sequence[str | os.PathLike], *, doc_per_file: bool = False,
                 skip_bad_lines: bool = False) -> None:
        self.files = check_corpus_files(files)
        self.doc_per_file = doc_per_file
        self.skip_bad_lines = skip_bad_lines
        self.stats = ReadStats()
        self.hashes: dict[str, str] = {}

    @property
    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)

    def documents(self) -> Iterator[Document]:
        done_before = 0
        for path in self.files:
            raw = _HashingReader(open(path, "rb"))  # noqa: SIM115 (closed below)
            try:
                text = gzip.GzipFile(fileobj=io.BufferedReader(raw), mode="rb") if is_gzip(path) else \
                    io.BufferedReader(raw, buffer_size=_HASH_CHUNK)
                for document in self._file_documents(path, text):
                    self.stats.bytes_done = done_before + raw.count
                    yield document
                while raw.read(_HASH_CHUNK):  # whatever gzip left unread (trailing bytes) still counts
                    pass
            except (OSError, EOFError, gzip.BadGzipFile) as err:
                if isinstance(err, FileNotFoundError):
                    raise
                what = "the compressed text" if is_gzip(path) else "the file"
                raise DataFormatError(path, None, f"cannot read {what}: {err}") from None
            finally:
                raw.close()
            self.hashes[str(path)] = raw.digest.hexdigest()
            done_before += raw.count
            self.stats.bytes_done = done_before

    def _file_documents(self, path: Path, handle) -> Iterator[Document]:
        sentences: list[str] = []
        size = 0
        continued = False
        offset = 0
        for number, raw_line in enumerate(handle, start=1):
            line = self._decode(path, raw_line, number, offset)
            offset += len(raw_line)
            self.stats.lines += 1
            if line is None:
                continue
            stripped = line.strip()
            if stripped:
                sentences.append(stripped)
                size += len(raw_line)
            if sentences and ((not stripped and not self.doc_per_file) or size >= MAX_DOCUMENT_BYTES):
                yield self._emit(sentences, continued)
                continued = bool(stripped)  # a document cut for size goes on in the next part
                sentences, size = [], 0
        if sentences:
            yield self._emit(sentences, continued)

    def _emit(self, sentences: list[str], continued: bool) -> Document:
        if not continued:
            self.stats.documents += 1
        return Document(sentences, continued)

    def _decode(self, path: Path, raw_line: bytes, number: int, offset: int) -> str | None:
        try:
            return raw_line.decode("utf-8")
        except UnicodeDecodeError as err:
            if not self.skip_bad_lines:
                raise not_utf8_line_error(path, number, err.start, offset + err.start) from None
            self.stats.bad_lines += 1
            if len(self.stats.skipped) < 5:
                self.stats.skipped.append(SkippedLine(str(path), number, offset + err.start))
            return None


def not_utf8_line_error(path: Path, line: int, byte_in_line: int, byte_in_file: int) -> DataFormatError:
    """Same wording as io_utils.not_utf8_error; offsets of the decompressed text for a `.gz` file."""
    text = " of the decompressed text" if is_gzip(path) else " of the file"
    return DataFormatError(path, line, f"not UTF-8 text (byte {byte_in_line} of the line, byte {byte_in_file}"
                                       f"{text}, counting from 0); --skip-bad-lines drops such lines")
