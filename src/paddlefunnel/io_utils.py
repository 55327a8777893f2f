"""Reading JSON, and the output rules: every output is checked before any work (`check_output_dir`,
`check_output_file`), written beside its target and renamed into place only when complete (`atomic_path`,
`atomic_directory`), and a filesystem error while writing becomes one `OutputError` naming the path.

The rules (README "Output rules"): an output must be writable and of the right kind (not a file where a directory
is wanted, nor the reverse); it is never an input, inside one, or around one (so --overwrite cannot touch an
input); a directory holding a previous result is refused unless the caller was told to resume or overwrite it;
staging leftovers of a killed run (`.<name>.XXXXXXXX.tmp`, `.<name>.old`) are removed, or put back, next time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import DataFormatError, InputError, MissingFileError, OutputError, OutputExistsError, PaddleFunnelError

logger = logging.getLogger("paddlefunnel")

# errno values that can only mean "this output cannot be written", whatever the code inside a block was doing
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})


def read_json_object(path: str | os.PathLike, what: str = "file") -> dict:
    """A JSON object from `path`; errors name the file, the line and column of a syntax error, and what was
    expected. The one reader for configs, recipes, tokenizer files and export descriptions."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such {what}") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def output_error(target: str | os.PathLike, what: str, err: OSError) -> OutputError:
    """One line: the path, what was being written, and the system's reason (read-only, no space, ...)."""
    reason = err.strerror or str(err)
    shown = err.filename and Path(err.filename).parent not in (Path(target), Path(target).parent)  # not staging
    where = f" ({err.filename})" if shown else ""
    return OutputError(f"{target}: cannot write the {what}: {reason}{where}")


@contextlib.contextmanager
def writing(target: str | os.PathLike, what: str, errnos: Iterable[int] | None = None) -> Iterator[None]:
    """Turn an OSError in the block into an `OutputError` naming `target` and `what` (only those with an errno in
    `errnos`, when given: a block that also reads inputs keeps their errors as they are)."""
    try:
        yield
    except PaddleFunnelError:
        raise
    except OSError as err:
        if errnos is not None and err.errno not in errnos:
            raise
        raise output_error(target, what, err) from err


def locate_bad_utf8(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """(line from 1, byte offset within that line, byte offset within the file) of the first byte that is not
    valid UTF-8, or None. Lines end at b"\\n" (as csv's line_num counts them); a leading BOM is ordinary UTF-8."""
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return number, err.start, offset + err.start
            offset += len(raw)
    return None


def not_utf8_error(path: str | os.PathLike, reason: str = "") -> DataFormatError | None:
    """The DataFormatError for a text file that is not UTF-8, at the real line and byte of its first bad byte
    (None when it has none). Readers decode a buffer ahead of the line they hand out, so the file is scanned again."""
    found = locate_bad_utf8(path)
    if found is None:
        return None
    line, in_line, in_file = found
    return DataFormatError(path, line, f"not UTF-8 text (byte {in_line} of the line, byte {in_file} of the file, "
                                       f"counting from 0{': ' + reason if reason else ''})")


def _default_mode(mode: int) -> int:
    """`mode` as the user's umask leaves it: what a plain open() / mkdir() would have given the output."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, what: str = "output file") -> Iterator[Path]:
    """Yield a temporary path next to `target`; it replaces `target` only if the block succeeds."""
    target = Path(target)
    with writing(target, what):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, _default_mode(0o666))  # mkstemp makes it private (0600); a written output is not
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        with writing(target, what, WRITE_ERRNOS):
            yield tmp
        with writing(target, what):
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: str | os.PathLike, text: str, what: str = "output file") -> None:
    with atomic_path(target, what) as tmp, writing(target, what):
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, what: str = "output directory") -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes `target` (replacing an old one) only on success.

    The old `target` is renamed to `.<name>.old` for the instant between the two renames; a run killed right
    then finds it put back by `remove_staging_leftovers`, which also runs here first.
    """
    target = Path(target)
    with writing(target, what):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_staging_leftovers(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        tmp.chmod(_default_mode(0o777))  # mkdtemp makes it private (0700); a written output is not
    try:
        with writing(target, what, WRITE_ERRNOS):
            try:
                yield tmp
            except OutputError as err:  # a write inside names the staging path, which is gone a moment later
                raise OutputError(str(err).replace(str(tmp), str(target))) from err
        with writing(target, what):
            _swap_in(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    old = _old_name(target)
    if old.exists():
        shutil.rmtree(old)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old)


# --------------------------------------------------------------------------------------- staging leftovers
def _old_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _is_staging_name(name: str, target_name: str) -> bool:
    """`.<target>.XXXXXXXX.tmp`: what tempfile.mkstemp/mkdtemp make for `atomic_path`/`atomic_directory`
    (8 characters of tempfile's alphabet), and nothing else."""
    return re.fullmatch(re.escape(f".{target_name}.") + r"[a-z0-9_]{8}\.tmp", name) is not None


def remove_staging_leftovers(target: str | os.PathLike) -> list[Path]:
    """Clean up after a killed write of `target`: remove our own staging entries for it, and put a previous
    version back from `.<name>.old` when the kill came between the two renames (target missing), else remove it.
    Only names of our own staging pattern for this target are touched. Returns what was removed or restored."""
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    touched = [entry for entry in parent.iterdir() if _is_staging_name(entry.name, target.name)]
    for entry in touched:
        _remove(entry)
    old = _old_name(target)
    if old.exists() or old.is_symlink():
        if target.exists():
            _remove(old)
        else:
            os.replace(old, target)  # the previous result comes back; the interrupted new one is gone
        touched.append(old)
    for entry in touched:
        logger.info("removed %s, left behind by an interrupted write of %s", entry, target)
    return touched


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ------------------------------------------------------------------------------------- checks before work
def check_no_overlap(target: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], what: str) -> None:
    """Refuse an output that is an input, lies inside one, or contains one (symlinks resolved): whatever replaces
    or fills the output can then never touch an input, --overwrite included. Inputs that are not existing paths
    (hub names, None) are skipped."""
    resolved_target = Path(target).resolve()
    for source in inputs:
        if source is None or not Path(source).exists():
            continue
        resolved = Path(source).resolve()
        if resolved == resolved_target:
            relation = "is the input"
        elif resolved in resolved_target.parents:
            relation = "is inside the input"
        elif resolved_target in resolved.parents:
            relation = "contains the input"
        else:
            continue
        raise InputError(f"{target}: the {what} {relation} {source}; choose another location "
                         "(an output never replaces, fills or encloses an input, --overwrite included)")


def probe_writable(directory: str | os.PathLike, target: str | os.PathLike, what: str) -> None:
    """Create and remove a temporary file in `directory`'s nearest existing ancestor: no permission, a read-only
    file system or a file in the way is reported now, not after the work is done."""
    probe = Path(directory)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{target}: cannot write the {what}: {probe} is a file, not a directory")
    with writing(target, what):
        fd, name = tempfile.mkstemp(prefix=".paddlefunnel-probe.", dir=probe)
        os.close(fd)
        os.unlink(name)


def _previous_entries(target: Path, previous: Sequence[str] | None) -> list[str]:
    """What in `target` counts as a previous result: the named entries, or (previous=None) any entry."""
    if not target.is_dir():
        return []
    if previous is None:
        return sorted(entry.name for entry in target.iterdir())
    return [name for name in previous if (target / name).exists()]


def check_output_dir(target: str | os.PathLike, *, what: str = "output directory",
                     inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False,
                     resume: bool = False, previous: Sequence[str] | None = None,
                     hint: str = "use --overwrite to replace it") -> Path:
    """Check an output directory before any work; returns it as a Path.

    `previous`: the entries that mark an earlier result inside it (a training run: best/, log.jsonl, ...; files
    are written into the directory, so it is probed and cleaned inside); None: the directory is replaced whole
    (export, convert), any entry is an earlier result, and the staging happens beside it. Such a result is refused
    with `OutputExistsError` (saying `hint`) unless `overwrite` or `resume`. Also refused: an existing file where
    the directory should be, an unwritable location (`OutputError`), overlap with `inputs` (`InputError`).
    """
    target = Path(target)
    if overwrite and resume:
        raise InputError("--resume continues what is there and --overwrite starts over: give one, not both")
    check_no_overlap(target, inputs, what)
    with writing(target, what):  # a location we may not even look at is one line too, not a traceback
        if target.exists() and not target.is_dir():
            raise OutputError(f"{target}: cannot write the {what}: it is an existing file, not a directory")
        whole = previous is None
        remove_staging_leftovers(target)
        for name in previous or ():
            remove_staging_leftovers(target / name)
        found = _previous_entries(target, previous)
        if found and not (overwrite or resume):
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            state = "exists and is not empty" if whole else "holds an earlier result"
            raise OutputExistsError(f"{target}: the {what} {state} ({shown}); {hint}")
        probe_writable(target.parent if whole else target, target, what)
    return target


def check_output_file(target: str | os.PathLike, *, what: str = "output file",
                      inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Check an output file before any work: not an existing directory, not an input (nor inside or around one),
    and its directory writable. An existing file is replaced, by rename, when the new one is complete."""
    target = Path(target)
    check_no_overlap(target, inputs, what)
    with writing(target, what):
        if target.is_dir():
            raise OutputError(f"{target}: cannot write the {what}: it is an existing directory, not a file")
        remove_staging_leftovers(target)
        probe_writable(target.parent, target, what)
    return target
