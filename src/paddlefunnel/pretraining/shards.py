"""A prepared pretraining data directory: memory-mapped `.npy` shards of packed examples, an index, a manifest.

Layout of DATA_DIR (written by `prepare.prepare_corpus`, read by `PreparedCorpus.open`):
- `{split}-{k:05d}.ids.npy`: token ids, [rows, max_seq_length], uint16 when the vocabulary fits, else int32;
  `<pad>` after the last `<sep>` only in the corpus's final example;
- `{split}-{k:05d}.seg.npy`: [rows, 2] lengths of segments A and B. Token types and the attention mask follow
  from them (`<cls>`:2, A and its `<sep>`:0, B and its `<sep>`:1, padding: type 0, mask 0), so they are not stored:
  two numbers a row instead of 2 x max_seq_length, and no need to trust a `<sep>` id found inside text;
- `index.json`: per split, the shard files with their rows, byte sizes and sha256;
- `manifest.json`: counts, settings, tokenizer fingerprint, special ids, the corpus files. It is written last, and
  the directory appears under its name only when complete (atomic rename), so a manifest means "complete".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ..errors import DataFormatError, InputError, MissingFileError
from ..io_utils import read_json_object

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"
TOKENIZER_DIR = "tokenizer"  # where `--train-vocab` saves the vocabulary it trained
FORMAT_VERSION = 1
SPLITS = ("train", "eval")
CLS_TYPE, A_TYPE, B_TYPE, PAD_TYPE = 2, 0, 1, 0  # the tokenizer's pair layout (tokenizer/pipeline.py)


def ids_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def segments_dtype(max_seq_length: int) -> np.dtype:
    return np.dtype(np.uint16) if max_seq_length <= np.iinfo(np.uint16).max else np.dtype(np.int32)


def shard_names(split: str, number: int) -> tuple[str, str]:
    stem = f"{split}-{number:05d}"
    return f"{stem}.ids.npy", f"{stem}.seg.npy"


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of everything that decides the ids of a text: the backend's normaliser, pre-tokeniser, WordPiece
    vocabulary and settings, special tokens and post-processor (its serialised form, without the per-call
    truncation and padding). Equal for a tokenizer and its `save_pretrained` / `from_pretrained` round trip."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    text = json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def special_ids(tokenizer) -> dict[str, int | None]:
    return {name: getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "sep", "pad", "mask")}


def require_mask_token(tokenizer) -> None:
    """Both objectives mask tokens: a tokenizer without `<mask>` cannot pretrain."""
    if getattr(tokenizer, "mask_token_id", None) is None:
        raise InputError("the tokenizer has no mask token (<mask>); MLM and ELECTRA pretraining need one")


# ------------------------------------------------------------------------------------------------ writing
class ShardWriter:
    """Collects the rows of one split in a fixed buffer and writes a shard each time it is full, so memory is
    one shard whatever the corpus size. Files go into `directory` (the staging directory of the preparation)."""

    def __init__(self, directory: Path, split: str, max_seq_length: int, dtype: np.dtype, rows_per_shard: int,
                 pad_id: int) -> None:
        self.directory = directory
        self.split = split
        self.pad_id = pad_id
        self.ids = np.full((rows_per_shard, max_seq_length), pad_id, dtype=dtype)
        self.segments = np.zeros((rows_per_shard, 2), dtype=segments_dtype(max_seq_length))
        self.filled = 0
        self.shards: list[dict[str, Any]] = []
        self.rows = 0
        self.tokens = 0

    def add(self, row: np.ndarray, len_a: int, len_b: int) -> None:
        self.ids[self.filled, :len(row)] = row
        self.segments[self.filled] = (len_a, len_b)
        self.filled += 1
        self.rows += 1
        self.tokens += len(row)
        if self.filled == len(self.ids):
            self.flush()

    def flush(self) -> None:
        if not self.filled:
            return
        ids_name, seg_name = shard_names(self.split, len(self.shards))
        entry = {"rows": self.filled}
        for key, name, array in (("ids", ids_name, self.ids), ("segments", seg_name, self.segments)):
            data = array[:self.filled]
            path = self.directory / name
            np.save(path, data)
            entry[key] = {"file": name, "bytes": path.stat().st_size, "dtype": data.dtype.name,
                          "sha256": _sha256_file(path)}
        self.shards.append(entry)
        self.ids.fill(self.pad_id)
        self.filled = 0


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ reading
class CorpusSplit:
    """One split's examples, read row by row from the memory-mapped shards (same shape as ArrayDataset)."""

    def __init__(self, name: str, ids: list[np.ndarray], segments: list[np.ndarray], max_seq_length: int,
                 pad_id: int) -> None:
        self.name = name
        self._ids = ids
        self._segments = segments
        self.max_seq_length = max_seq_length
        self.pad_id = pad_id
        self._starts = np.cumsum([0] + [len(shard) for shard in ids])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def rows(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n, L] int64, segment lengths [n, 2] int64) of the given example indices; only those rows are
        read from disk."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"example index out of range for the {self.name} split of {len(self)} examples")
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1
        ids = np.empty((len(indices), self.max_seq_length), dtype=np.int64)
        segments = np.empty((len(indices), 2), dtype=np.int64)
        for shard in np.unique(shard_of):
            where = np.flatnonzero(shard_of == shard)
            local = indices[where] - self._starts[shard]
            ids[where] = self._ids[shard][local]
            segments[where] = self._segments[shard][local]
        return ids, segments

    def arrays(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """The model inputs of the given examples as int64 numpy arrays."""
        ids, segments = self.rows(indices)
        token_type_ids, attention_mask = types_and_mask(segments, self.max_seq_length)
        return {"input_ids": ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}

    def batch(self, indices: Sequence[int]) -> dict[str, paddle.Tensor]:
        return {key: paddle.to_tensor(value) for key, value in self.arrays(indices).items()}


def types_and_mask(segments: np.ndarray, max_seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token types and attention mask of `<cls> A <sep> B <sep> <pad>...` rows from their (len A, len B)."""
    position = np.arange(max_seq_length)[None, :]
    len_a, len_b = segments[:, :1], segments[:, 1:]
    end_a = len_a + 2  # positions before it: <cls>, A, <sep>
    end = end_a + len_b + 1
    types = np.where(position < end_a, A_TYPE, np.where(position < end, B_TYPE, PAD_TYPE))
    types[:, 0] = CLS_TYPE
    return types.astype(np.int64), (position < end).astype(np.int64)


class PreparedCorpus:
    """A complete data directory written by `prepare_corpus`; `open` checks it before any training step."""

    def __init__(self, data_dir: Path, manifest: dict, index: dict, splits: dict[str, CorpusSplit]) -> None:
        self.data_dir = data_dir
        self.manifest = manifest
        self.index = index
        self._splits = splits

    @classmethod
    def open(cls, data_dir: str | os.PathLike, *, verify_checksums: bool = False) -> PreparedCorpus:
        """Open DATA_DIR: the manifest (the "complete" mark), the index, and every shard with the size, dtype and
        shape the index records (a truncated or replaced shard is an error naming the file). `verify_checksums`
        also reads every shard to compare its sha256 (slow on a large corpus)."""
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise MissingFileError(f"{data_dir}: no such data directory; create it with `paddlefunnel pretrain "
                                   "prepare`")
        manifest_path = data_dir / MANIFEST_FILE
        if not manifest_path.is_file():
            raise InputError(f"{data_dir}: not a complete prepared corpus (no {MANIFEST_FILE}); an interrupted "
                             "preparation leaves none: run `paddlefunnel pretrain prepare` again")
        manifest = read_json_object(manifest_path, "manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataFormatError(manifest_path, None, f"format_version {manifest.get('format_version')!r}, "
                                                       f"expected {FORMAT_VERSION}; prepare the corpus again")
        index = read_json_object(data_dir / INDEX_FILE, "shard index")
        try:
            splits = {split: _open_split(data_dir, manifest, index, split, verify_checksums) for split in SPLITS}
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(data_dir / INDEX_FILE, None, f"manifest or index lacks or garbles {err}; "
                                                               "prepare the corpus again") from None
        return cls(data_dir, manifest, index, splits)

    def split(self, name: str) -> CorpusSplit:
        if name not in self._splits:
            raise InputError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return self._splits[name]

    @property
    def max_seq_length(self) -> int:
        return int(self.manifest["max_seq_length"])

    def check_compatible(self, tokenizer, max_seq_length: int) -> None:
        """Refuse to train on this data with another tokenizer (different ids for the same text), another
        sequence length, or a tokenizer that has no `<mask>` (both objectives need it)."""
        require_mask_token(tokenizer)
        fingerprint = tokenizer_fingerprint(tokenizer)
        if fingerprint != self.manifest["tokenizer_fingerprint"]:
            hint = " (it was prepared with the vocabulary saved in its tokenizer/ folder)" \
                if (self.data_dir / TOKENIZER_DIR).is_dir() else ""
            raise InputError(f"{self.data_dir}: prepared with another tokenizer (fingerprint "
                             f"{self.manifest['tokenizer_fingerprint'][:12]}, this one {fingerprint[:12]}){hint}; "
                             "use that tokenizer or prepare the corpus again with this one")
        if int(max_seq_length) != self.max_seq_length:
            raise InputError(f"{self.data_dir}: prepared with max_seq_length {self.max_seq_length}, the run asks "
                             f"for {max_seq_length}; use {self.max_seq_length} or prepare the corpus again")
        if special_ids(tokenizer) != self.manifest["special_ids"]:
            raise InputError(f"{self.data_dir}: special token ids {self.manifest['special_ids']} differ from the "
                             f"tokenizer's {special_ids(tokenizer)}")


def _open_split(data_dir: Path, manifest: dict, index: dict, split: str, verify_checksums: bool) -> CorpusSplit:
    max_seq_length = int(manifest["max_seq_length"])
    entries = index["splits"][split]
    ids = [_open_shard(data_dir, entry["ids"], (entry["rows"], max_seq_length), verify_checksums)
           for entry in entries]
    segments = [_open_shard(data_dir, entry["segments"], (entry["rows"], 2), verify_checksums) for entry in entries]
    result = CorpusSplit(split, ids, segments, max_seq_length, int(manifest["special_ids"]["pad"]))
    expected = manifest["splits"][split]
    if len(result) != expected:
        raise DataFormatError(data_dir / INDEX_FILE, None, f"the {split} shards hold {len(result)} examples, the "
                                                           f"manifest says {expected}")
    return result


def _open_shard(data_dir: Path, entry: dict, shape: tuple[int, int], verify_checksum: bool) -> np.ndarray:
    path = data_dir / entry["file"]
    if not path.is_file():
        raise DataFormatError(path, None, "shard file missing (listed in index.json); prepare the corpus again")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DataFormatError(path, None, f"shard is {size} bytes, index.json says {entry['bytes']}: truncated or "
                                          "replaced; prepare the corpus again")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(path, None, f"not a readable .npy shard ({err}); prepare the corpus again") from None
    if array.shape != shape or array.dtype.name != entry["dtype"]:
        raise DataFormatError(path, None, f"shard holds {array.dtype.name} {list(array.shape)}, expected "
                                          f"{entry['dtype']} {list(shape)}; prepare the corpus again")
    if verify_checksum and _sha256_file(path) != entry["sha256"]:
        raise DataFormatError(path, None, "shard content does not match its sha256 in index.json (corrupt); "
                                          "prepare the corpus again")
    return array
