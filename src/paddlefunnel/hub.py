"""Hub names: turn "a local path or a HuggingFace repo id" into a local directory, through `huggingface_hub`.

One resolution for every caller (`from_pretrained` of the models and the tokenizer, the CLI's `--model` /
`--tokenizer`, `compare`): a path that exists always wins; otherwise a repo id (`org/name`) is looked up in the
HuggingFace cache first (`$HF_HUB_CACHE/models--org--name/snapshots/<commit>/...`), and only the files that are
missing there are downloaded: `config.json`, ONE weights format (safetensors, its sharded index + shards, else
`pytorch_model.bin`; never TensorFlow/Flax files) and the tokenizer files that exist. All files of one resolution
come from the same commit, so the returned snapshot directory is consistent.

`huggingface_hub` reads `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE` and `HF_ENDPOINT` into constants when it is
imported; users (and tests) set them later, so they are read here at every call and passed on explicitly.

A download is checked against the hash the hub gave as its ETag (sha256 for LFS files, the git blob id for the
others): a truncated or corrupt file is removed from the cache, never kept as good, and a rerun fetches it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from huggingface_hub import _CACHED_NO_EXIST, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from huggingface_hub.utils.sha import git_hash, sha_fileobj

from .errors import InputError, MissingFileError, WeightsError
from .io_utils import read_json_object
from .registry import (
    CONFIG_FILE,
    SAFE_WEIGHTS_FILE,
    SAFE_WEIGHTS_INDEX_FILE,
    TOKENIZER_FILES,
    TORCH_WEIGHTS_FILE,
    VOCABULARY_FILES,
)
from .version import __version__

logger = logging.getLogger("paddlefunnel")

# What a caller may ask for: the config, the weights, the tokenizer files (each fetched if the repo has it).
CONFIG, WEIGHTS, TOKENIZER = "config", "weights", "tokenizer"
MODEL_PARTS = (CONFIG, WEIGHTS)
# Weights on the hub, in order of preference; the first one present is the only one fetched.
HUB_WEIGHTS_FILES = (SAFE_WEIGHTS_FILE, SAFE_WEIGHTS_INDEX_FILE, TORCH_WEIGHTS_FILE)
DEFAULT_ENDPOINT = "https://huggingface.co"
MODEL_TYPE = "funnel"
# Names that are files, not repos: a missing `tiny.json` is a missing file, not a hub lookup.
_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pdparams", ".pt", ".pth", ".txt", ".h5", ".onnx")
_TRUE = {"1", "ON", "YES", "TRUE"}
_HASH_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # git blob id (sha1) or LFS sha256


# ------------------------------------------------------------------------------------- settings at call time
def hub_cache_dir() -> Path:
    """The cache `huggingface_hub` uses, from the environment as it is now (same precedence as the library)."""
    env = os.environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def offline_mode() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) as set now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_repo_id(name: str) -> bool:
    """`org/name` as the hub spells it (one slash, hub characters), and not a file name."""
    if name.count("/") != 1 or name.lower().endswith(_FILE_SUFFIXES):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def shard_names(index_path: Path, where: str) -> list[str]:
    """The shard files a sharded safetensors index names: plain file names beside it (a name with a directory
    part could read outside the checkpoint); a WeightsError naming `where` otherwise. Used for local indexes and
    for the hub's alike."""
    weight_map = read_json_object(index_path, "safetensors index").get("weight_map")
    if not isinstance(weight_map, dict):
        raise WeightsError(f"{where}: {index_path.name} has no 'weight_map' object")
    names = set()
    for shard in weight_map.values():
        if not isinstance(shard, str) or Path(shard).name != shard or shard in ("", ".", ".."):
            raise WeightsError(f"{where}: {index_path.name} names shard {shard!r}; expected a file name beside it")
        names.add(shard)
    return sorted(names)


# ------------------------------------------------------------------------------------------- resolution
def resolve_pretrained(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    parts: Collection[str] = MODEL_PARTS,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """The local path for `name_or_path`: itself when it exists (or is not a repo id), else the cache snapshot
    directory of hub repo `org/name` holding `parts` (config, weights, tokenizer), downloading what is missing.

    `revision` is a branch, tag or commit (default "main"); `cache_dir` overrides `HF_HUB_CACHE`;
    `local_files_only` (or `HF_HUB_OFFLINE=1`) never downloads. Errors are one line naming the repo and the fix.
    """
    path = Path(name_or_path)
    if path.exists() or not is_repo_id(str(name_or_path)):
        return path
    unknown = set(parts) - {CONFIG, WEIGHTS, TOKENIZER}
    if unknown or not parts:
        raise ValueError(f"parts must be some of {CONFIG!r}, {WEIGHTS!r}, {TOKENIZER!r}, got {sorted(parts)}")
    offline = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set" if offline_mode() else None
    repo = _HubRepo(str(name_or_path), revision, Path(cache_dir) if cache_dir else hub_cache_dir(), offline,
                    hub_endpoint())
    found: list[Path] = []
    if CONFIG in parts:
        found.append(repo.config())
    if WEIGHTS in parts:
        found.extend(repo.weights())
    if TOKENIZER in parts:
        found.extend(repo.tokenizer_files(required=not found))
    return found[0].parent


@dataclass
class _HubRepo:
    """One repo at one revision; the revision is pinned to the commit of the first file found."""

    repo_id: str
    requested: str | None  # the revision asked for (messages)
    cache_dir: Path
    offline: str | None  # why nothing may be downloaded; None: online
    endpoint: str
    revision: str | None = field(init=False)  # what is looked up: the request, then the first file's commit

    def __post_init__(self) -> None:
        self.revision = self.requested

    # ------------------------------------------------------------------------------ the three parts
    def config(self) -> Path:
        path = self._get(CONFIG_FILE)
        if path is None:
            raise MissingFileError(f"{self._where}: no {CONFIG_FILE} in the repository: not a transformers model "
                                   "repo (a Funnel model needs config.json and weights)")
        model_type = read_json_object(path, "config file").get("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise InputError(f"{self._where}: its {CONFIG_FILE} says model_type {model_type!r}, not "
                             f"{MODEL_TYPE!r}: not a Funnel-Transformer model")
        return path

    def weights(self) -> list[Path]:
        """The first weights format present: in the cache (no network), else on the hub (one format fetched)."""
        for name in HUB_WEIGHTS_FILES:
            cached = self._cached(name)
            if isinstance(cached, Path):
                return self._with_shards(cached)
        unknown = [name for name in HUB_WEIGHTS_FILES if self._cached(name) is not _CACHED_NO_EXIST]
        if unknown and self.offline:
            raise self._offline_error(unknown[0])
        for name in unknown:
            path = self._get(name)
            if path is not None:
                return self._with_shards(path)
        raise MissingFileError(f"{self._where}: no weights in a format paddlefunnel reads (looked for "
                               f"{', '.join(HUB_WEIGHTS_FILES)}; TensorFlow and Flax files are not read)")

    def tokenizer_files(self, required: bool) -> list[Path]:
        """The tokenizer files the repo has (each optional); `required`: a vocabulary must be among them."""
        found, unknown = [], []
        for name in TOKENIZER_FILES:
            cached = self._cached(name)
            if isinstance(cached, Path):
                found.append(cached)
            elif cached is _CACHED_NO_EXIST:
                continue
            elif self.offline:
                unknown.append(name)
            else:
                path = self._get(name)
                if path is not None:
                    found.append(path)
        if required and not any(p.name in VOCABULARY_FILES for p in found):
            if unknown:
                raise self._offline_error(unknown[0])
            raise MissingFileError(f"{self._where}: no tokenizer in the repository (looked for "
                                   f"{' or '.join(VOCABULARY_FILES)})")
        return found

    def _with_shards(self, path: Path) -> list[Path]:
        if path.name != SAFE_WEIGHTS_INDEX_FILE:
            return [path]
        shards = []
        for shard in shard_names(path, self._where):
            shard_path = self._get(shard)
            if shard_path is None:
                raise MissingFileError(f"{self._where}: {path.name} names shard {shard!r}, which the repository "
                                       "does not have")
            shards.append(shard_path)
        return [path, *shards]

    # ------------------------------------------------------------------------------ one file
    @property
    def _where(self) -> str:
        return self.repo_id if self.requested in (None, "main") else f"{self.repo_id} (revision {self.requested})"

    def _cached(self, filename: str) -> Path | object | None:
        """The cached file, `_CACHED_NO_EXIST` (the hub said it has none), or None (not known here)."""
        hit = try_to_load_from_cache(self.repo_id, filename, cache_dir=self.cache_dir, revision=self.revision)
        if isinstance(hit, str):
            self._pin(Path(hit))
            return Path(hit)
        return hit

    def _pin(self, path: Path) -> None:
        """Later files come from the same commit (the snapshot directory's name)."""
        self.revision = path.parent.name

    def _get(self, filename: str) -> Path | None:
        """The file from the cache, else downloaded; None if the repository does not have it."""
        cached = self._cached(filename)
        if isinstance(cached, Path):
            return cached
        if cached is _CACHED_NO_EXIST:
            return None
        if self.offline:
            raise self._offline_error(filename)
        path = self._download(filename)
        if path is not None:
            self._pin(path)
        return path

    def _download(self, filename: str) -> Path | None:
        logger.debug("looking up %s in %s on %s", filename, self.repo_id, self.endpoint)
        try:
            with _quiet_http_log():
                path = Path(hf_hub_download(self.repo_id, filename, revision=self.revision,
                                            cache_dir=self.cache_dir, endpoint=self.endpoint,
                                            library_name="paddlefunnel", library_version=__version__))
        except RemoteEntryNotFoundError:
            return None
        except RevisionNotFoundError:
            raise InputError(f"{self.repo_id}: no revision {self.requested!r} (branch, tag or commit) on "
                             f"{self.endpoint}; check the revision") from None
        except GatedRepoError:
            raise MissingFileError(f"{self.repo_id}: a gated repository on {self.endpoint}: accept its conditions "
                                   f"at {self.endpoint}/{self.repo_id} and log in (`hf auth login`)") from None
        except RepositoryNotFoundError:
            raise MissingFileError(f"{self.repo_id}: no such local path, and no model repository of that name on "
                                   f"{self.endpoint}: check the name (a private repository needs `hf auth "
                                   "login`)") from None
        except LocalEntryNotFoundError as err:
            raise self._offline_error(filename, err.__cause__ or err) from None
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as err:
            raise MissingFileError(f"{self.repo_id}: downloading {filename} from {self.endpoint} failed "
                                   f"({_one_line(err, first_line=True)}); nothing was kept in the cache: run "
                                   "again") from None
        self._verify(path, filename)
        logger.info("%s: %s (%s bytes) is in the cache at %s", self.repo_id, filename, f"{path.stat().st_size:,}",
                    self.cache_dir)
        return path

    def _verify(self, path: Path, filename: str) -> None:
        """The downloaded blob must hash to the ETag it is named after; otherwise it leaves the cache."""
        blob = path.resolve()
        expected = blob.name
        if blob == path.absolute() or not _HASH_NAME.fullmatch(expected):
            return  # a copy (no symlinks on this file system) or a foreign ETag: nothing to check against
        actual = _file_digest(blob, git_blob=len(expected) == 40)
        if actual == expected:
            return
        size = blob.stat().st_size
        blob.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise MissingFileError(f"{self.repo_id}: the download of {filename} is incomplete or corrupt ({size} bytes "
                               f"hashing to {actual[:12]}..., the hub's ETag is {expected[:12]}...); it was removed "
                               "from the cache: run again")

    def _offline_error(self, filename: str, cause: BaseException | None = None) -> MissingFileError:
        if self.offline:
            why = self.offline
        elif cause is not None:
            why = f"the hub at {self.endpoint} cannot be reached ({_one_line(cause)})"
        else:
            why = f"the hub at {self.endpoint} cannot be reached"
        return MissingFileError(
            f"{self._where}: no such local path, and {filename} is not in the cache at {self.cache_dir} and {why}: "
            "download it once while online (same HF_HUB_CACHE / HF_HOME), or pass the path of a model directory")


@contextlib.contextmanager
def _quiet_http_log() -> Iterator[None]:
    """The HTTP client logs every request at INFO, and Paddle's root handler prints INFO: keep the downloads to
    huggingface_hub's progress bar and our notes."""
    http_logger = logging.getLogger("httpx2")
    level = http_logger.level
    http_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        http_logger.setLevel(level)


def _file_digest(path: Path, git_blob: bool) -> str:
    """What the hub's ETag is for this kind of file: git's blob id (regular files, a few MB at most) or the
    sha256 of the content (LFS files, read in chunks)."""
    if git_blob:
        return git_hash(path.read_bytes())
    with open(path, "rb") as handle:
        return sha_fileobj(handle).hex()


def _one_line(err: BaseException, first_line: bool = False) -> str:
    text = str(err).strip()
    text = " ".join((text.splitlines()[0] if first_line and text else text).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
