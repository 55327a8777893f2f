"""PyTorch checkpoints (`pytorch_model.bin`, `.pt`, `.pth`) read with numpy alone: no torch, no code execution.

The HuggingFace hub's Funnel repositories ship `pytorch_model.bin` only, and a runtime install has no torch.
`torch.save` (torch >= 1.6) writes a zip archive whose records all sit under one top folder `<archive>/`:

    data.pkl      a pickle of the saved object (a state dict); each tensor in it is a call
                  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
                  whose storage is a persistent id `("storage", torch.<Type>Storage, key, device, numel)`
    data/<key>    that storage's raw bytes, stored uncompressed, in the byte order named by `byteorder`
    byteorder     "little" or "big" (absent in old files: little)
    version, .format_version, .storage_alignment, .data/serialization_id: bookkeeping, not needed here

`data.pkl` is read by an unpickler that resolves only the few globals a state dict needs, each to a stand-in
here that builds numpy arrays (`_ALLOWED_GLOBALS`); any other global (os.system, builtins.eval, a model class)
is refused before anything is imported or called, so a malicious file cannot run code. Every value a stand-in
receives is checked (types, sizes, that a view stays inside its storage) before numpy touches memory.

Files from torch < 1.6 (or `_use_new_zipfile_serialization=False`) are a bare pickle stream instead;
`torch_save_format` recognises them so the caller can hand them to torch or explain the way out.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import WeightsError

ZIP_FORMAT = "zip"
LEGACY_FORMAT = "legacy"

# The first object of a legacy (pre-zip) torch.save stream; torch/serialization.py MAGIC_NUMBER.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_BFLOAT16 = "bfloat16"  # numpy has no bfloat16: such storages are read as uint16 and widened to float32

# torch.<name>Storage -> numpy element type of the raw bytes.
_STORAGE_DTYPES: dict[str, Any] = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": _BFLOAT16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
}
# torch writes `torch.<name>Storage`; CUDA storages were normalised to the same names before saving, but
# accepting the `torch.cuda` spelling costs nothing (the device is ignored: everything is read to the CPU).
_STORAGE_MODULES = ("torch", "torch.cuda")


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for `torch.<name>Storage`: only a marker carrying the element type (not callable)."""

    name: str
    dtype: Any  # a numpy type, or _BFLOAT16

    @property
    def raw_dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.dtype == _BFLOAT16 else self.dtype)


@dataclass(frozen=True)
class _TensorType:
    """Stand-in for `torch.Tensor` / `torch.nn.parameter.Parameter` as the `new_type` of `_rebuild_from_type_v2`."""

    name: str


@dataclass
class _Storage:
    """One storage's elements (a flat array of its raw type); `handed_out` once a tensor owns the array."""

    key: str
    type: _StorageType
    array: np.ndarray
    handed_out: bool = False


class _BadCheckpoint(Exception):
    """A file that is not a readable plain state dict; `read_torch_zip` re-raises it as WeightsError with the path."""


# ------------------------------------------------------------------------------------ format detection
def torch_save_format(path: Path) -> str:
    """ZIP_FORMAT or LEGACY_FORMAT for a file written by `torch.save`; WeightsError for anything else."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        raise WeightsError(f"{path}: cannot be read ({err})") from None
    if head.startswith(b"PK\x03\x04") or zipfile.is_zipfile(path):
        return ZIP_FORMAT
    if head[257:262] == b"ustar":  # torch <= 0.3 wrote a tar archive
        return LEGACY_FORMAT
    if head.startswith(b"\x80") and _first_pickle_is_legacy_magic(head):
        return LEGACY_FORMAT
    raise WeightsError(f"{path}: not a PyTorch checkpoint (expected the zip archive torch.save writes)")


def _first_pickle_is_legacy_magic(head: bytes) -> bool:
    """Whether the stream starts with torch's legacy magic number (read with an unpickler that imports nothing)."""
    try:
        return _RefuseAllUnpickler(io.BytesIO(head)).load() == _LEGACY_MAGIC_NUMBER
    except Exception:  # any malformed prefix just means "not the legacy format"
        return False


class _RefuseAllUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


# ---------------------------------------------------------------------------------------- zip reading
def read_torch_zip(path: Path) -> dict[str, np.ndarray]:
    """The state dict in a zip-format torch.save file, as numpy arrays (bfloat16 widened exactly to float32).

    Raises WeightsError naming the file for a truncated or corrupt archive, a pickle that needs anything beyond
    the allow-list (code, model classes, optimiser objects), or a value that is not a tensor.
    """
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            return _as_state_dict(_ZipCheckpoint(archive, raw).load())
    except _BadCheckpoint as err:
        raise WeightsError(f"{path}: {err}") from None
    except zipfile.BadZipFile as err:
        raise WeightsError(f"{path}: not a complete zip archive, truncated or corrupt? ({err})") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, KeyError, IndexError,
            RecursionError, MemoryError, OverflowError, OSError) as err:
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({type(err).__name__}: {err})") from None


def _as_state_dict(state: Any) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise _BadCheckpoint(f"expected a state dict (a dict of tensors), got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise _BadCheckpoint(f"expected a state dict with str keys, got key {key!r}")
        if not isinstance(value, np.ndarray):
            raise _BadCheckpoint(
                f"entry {key!r} is a {type(value).__name__}, not a tensor: expected a state dict of tensors "
                "(a training checkpoint? save model.state_dict() alone)")
    return dict(state)


class _ZipCheckpoint:
    """The records of one torch.save zip archive, and the storages its pickle asks for (each read once)."""

    def __init__(self, archive: zipfile.ZipFile, raw: BinaryIO) -> None:
        self.archive = archive
        self.raw = raw
        self.prefix = self._find_prefix()
        self.big_endian = self._read_byteorder() == "big"
        self.storages: dict[str, _Storage] = {}

    def _find_prefix(self) -> str:
        names = self.archive.namelist()
        prefixes = sorted({n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1})
        if len(prefixes) != 1:
            found = "no" if not prefixes else f"{len(prefixes)}"
            raise _BadCheckpoint(f"a zip archive with {found} <archive>/data.pkl records: "
                                 "not a checkpoint written by torch.save")
        if f"{prefixes[0]}/constants.pkl" in names:
            raise _BadCheckpoint("a TorchScript archive (torch.jit.save), not a state dict")
        return prefixes[0]

    def _read_byteorder(self) -> str:
        try:
            order = self.archive.read(f"{self.prefix}/byteorder").decode("ascii", "replace").strip()
        except KeyError:
            return "little"  # files from before torch recorded it; torch reads them as little-endian too
        if order not in ("little", "big"):
            raise _BadCheckpoint(f"byteorder record says {order!r}, expected 'little' or 'big'")
        return order

    def load(self) -> Any:
        unpickler = _StateDictUnpickler(io.BytesIO(self.archive.read(f"{self.prefix}/data.pkl")), self)
        return unpickler.load()

    def storage(self, storage_type: _StorageType, key: str, numel: int) -> _Storage:
        """The storage `key` with `numel` elements of `storage_type`, read from `data/<key>` on first use."""
        if key in self.storages:
            storage = self.storages[key]
            if storage.type != storage_type:
                raise _BadCheckpoint(f"storage {key!r} is used as both {storage.type.name} and "
                                     f"{storage_type.name}")
            return storage
        nbytes = numel * storage_type.raw_dtype.itemsize
        data = self._read_record(f"{self.prefix}/data/{key}", nbytes)
        array = data.view(storage_type.raw_dtype)
        if self.big_endian:
            array.byteswap(inplace=True)
        storage = self.storages[key] = _Storage(key, storage_type, array)
        return storage

    def _read_record(self, name: str, nbytes: int) -> np.ndarray:
        """Exactly `nbytes` of record `name` as a writable uint8 array, CRC-checked against the archive."""
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise _BadCheckpoint(f"record {name} is missing (truncated archive?)") from None
        if info.file_size < nbytes:
            raise _BadCheckpoint(f"record {name} holds {info.file_size} bytes, the tensor needs {nbytes}")
        if info.compress_type != zipfile.ZIP_STORED:  # torch never compresses; a re-zipped file might
            with self.archive.open(info) as handle:  # inflate only what the tensor needs
                return np.frombuffer(bytearray(handle.read(nbytes)), dtype=np.uint8)
        start = self._data_offset(info)
        if start + info.file_size > self.raw.seek(0, io.SEEK_END):
            raise _BadCheckpoint(f"record {name} runs past the end of the file (truncated file?)")
        buffer = np.empty(info.file_size, dtype=np.uint8)
        self.raw.seek(start)
        if self.raw.readinto(memoryview(buffer)) != info.file_size:
            raise _BadCheckpoint(f"record {name} is cut short (truncated file?)")
        if zlib.crc32(buffer) != info.CRC:
            raise _BadCheckpoint(f"record {name} fails its CRC check (corrupt file?)")
        return buffer[:nbytes]

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a stored record's bytes start: after its local header, whose extra field torch pads to align."""
        self.raw.seek(info.header_offset)
        header = self.raw.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise _BadCheckpoint(f"record {info.filename} has no valid local header (corrupt file?)")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_length + extra_length


# ---------------------------------------------------------------------------------------- the pickle
class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict with numpy stand-ins for torch's rebuild functions; every other global is refused."""

    def __init__(self, stream: BinaryIO, checkpoint: _ZipCheckpoint) -> None:
        super().__init__(stream)
        self.checkpoint = checkpoint

    def find_class(self, module: str, name: str) -> Any:
        if module in _STORAGE_MODULES and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a state dict needs only tensors and dicts, so nothing else is "
            "imported or run (save model.state_dict() with plain tensors)")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and _text(pid[0]) == "storage"):
            raise _BadCheckpoint(f"unexpected persistent id {pid!r:.80}: expected a storage reference")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise _BadCheckpoint(f"storage {key!r} has type {storage_type!r:.80}, expected torch.*Storage")
        key = _text(key)
        if not isinstance(key, str) or not _is_count(numel):
            raise _BadCheckpoint(f"storage reference {pid!r:.80} is malformed")
        return self.checkpoint.storage(storage_type, key, numel)


def _text(value: Any) -> Any:
    """Persistent ids written under Python 2 carry bytes; torch decodes them as ASCII."""
    return value.decode("ascii") if isinstance(value, bytes) else value


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
    """Stand-in for torch._utils._rebuild_tensor_v2: the view (offset, size, stride) of `storage` as an array."""
    if not isinstance(storage, _Storage):
        raise _BadCheckpoint(f"a tensor is rebuilt from {type(storage).__name__}, expected a storage")
    if not (_is_count(offset) and isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(map(_is_count, size)) and all(map(_is_count, stride))):
        raise _BadCheckpoint(f"tensor on storage {storage.key!r} has a malformed view: "
                                   f"offset {offset!r:.40}, size {size!r:.80}, stride {stride!r:.80}")
    array = _view(storage, offset, size, stride)
    array = _apply_metadata(array, metadata, storage.key)
    return _widen_bfloat16(array) if storage.type.dtype == _BFLOAT16 else array


def _view(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> np.ndarray:
    """Elements `offset + sum(i_k * stride_k)` of the storage, as an array of its own (or the storage's, once)."""
    base = storage.array
    numel = int(np.prod(size, dtype=object))
    if numel == 0:
        return np.empty(size, dtype=base.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= base.size:
        raise _BadCheckpoint(f"tensor of size {list(size)} at offset {offset} reaches element {last} of "
                                   f"storage {storage.key!r}, which holds {base.size}")
    contiguous = tuple(int(np.prod(size[k + 1:], dtype=object)) for k in range(len(size)))
    if offset == 0 and numel == base.size and all(n == 1 or s == c for n, s, c in zip(size, stride, contiguous)):
        if not storage.handed_out:  # the usual case: one tensor owns its whole storage, no copy needed
            storage.handed_out = True
            return base.reshape(size)
        return base.reshape(size).copy()
    strides = tuple(s * base.itemsize for s in stride)
    return np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=strides, writeable=False).copy()


def _apply_metadata(array: np.ndarray, metadata: Any, key: str) -> np.ndarray:
    """torch records lazy conjugate / negative views as metadata flags; materialise them."""
    if not metadata:
        return array
    if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
        raise _BadCheckpoint(f"tensor on storage {key!r} has unsupported metadata {metadata!r:.80}")
    if metadata.get("neg"):
        array = np.negative(array)
    if metadata.get("conj"):
        array = np.conj(array)
    return array


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shifting its 16 bits up gives the same value exactly."""
    widened = bits.astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> np.ndarray:
    """Stand-in for torch._utils._rebuild_parameter(_with_state): a parameter is its data (its state is dropped)."""
    if not isinstance(data, np.ndarray):
        raise _BadCheckpoint(f"a parameter is rebuilt from {type(data).__name__}, expected a tensor")
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any = None) -> np.ndarray:
    """Stand-in for torch._tensor._rebuild_from_type_v2 (a tensor that carried Python attributes): its data."""
    if func is not _rebuild_tensor_v2 or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
        raise _BadCheckpoint(f"a tensor rebuilt as {new_type!r:.60} through {func!r:.60}: expected a "
                                   "plain tensor or parameter")
    return _rebuild_tensor_v2(*args)


# (module, name) -> what the unpickler gets instead. Storage types are handled through _STORAGE_DTYPES.
_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type | _TensorType] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorType("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _TensorType("torch.nn.parameter.Parameter"),
}
