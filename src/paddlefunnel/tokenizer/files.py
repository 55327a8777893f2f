"""The tokenizer's files (HuggingFace layout): vocab.txt, tokenizer.json, tokenizer_config.json and
special_tokens_map.json; reading a directory into a vocabulary plus constructor options, and writing one.

Options are looked up in this order, the first found winning: tokenizer_config.json, special_tokens_map.json,
the normaliser stored in tokenizer.json, the constructor's defaults.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.models import WordPiece

from ..errors import InputError, MissingFileError
from ..io_utils import atomic_write_text, read_json_object
from ..registry import SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE
from .specials import SPECIAL_TOKEN_ATTRIBUTES

# Options a file may set, and the JSON values each accepts (checked here so that a bad value names the file).
FILE_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "do_lower_case": (bool,),
    "strip_accents": (bool, type(None)),
    "tokenize_chinese_chars": (bool,),
    "clean_text": (bool,),
    "wordpieces_prefix": (str,),
    "padding_side": (str,),
    "truncation_side": (str,),
}
# tokenizer.json's BertNormalizer fields -> constructor options.
NORMALIZER_OPTIONS = (
    ("lowercase", "do_lower_case"),
    ("strip_accents", "strip_accents"),
    ("handle_chinese_chars", "tokenize_chinese_chars"),
    ("clean_text", "clean_text"),
)


# ------------------------------------------------------------------------------------------ reading
def read_pretrained(path: Path) -> tuple[dict[str, int], dict[str, Any], str]:
    """Vocabulary, options and the vocabulary file's name (for messages) of a tokenizer directory or file.

    `tokenizer.json` wins over `vocab.txt` (as in transformers).
    """
    directory, vocab_path, json_path = _locate(path)
    options: dict[str, Any] = {}
    if json_path is not None:
        vocab, file_options = _read_tokenizer_json(json_path)
        options.update(file_options)
        source = str(json_path)
    else:
        vocab = read_vocab_file(vocab_path)
        source = str(vocab_path)
    special_map_path = directory / SPECIAL_TOKENS_MAP_FILE  # older hub layouts keep the names here
    if special_map_path.is_file():
        options.update(_special_tokens(read_json_object(special_map_path), special_map_path))
    config_path = directory / TOKENIZER_CONFIG_FILE
    if config_path.is_file():
        options.update(_options_from_config(read_json_object(config_path), config_path))
    return vocab, options, source


def _locate(path: Path) -> tuple[Path, Path | None, Path | None]:
    """(directory, vocab.txt, tokenizer.json) for a directory or a file; the one to read is not None."""
    if not path.exists():
        raise MissingFileError(f"{path}: no such tokenizer directory or file")
    if not path.is_dir():
        return (path.parent, None, path) if path.suffix == ".json" else (path.parent, path, None)
    vocab_path, json_path = path / VOCAB_FILE, path / TOKENIZER_FILE
    if json_path.is_file():
        return path, vocab_path, json_path
    if not vocab_path.is_file():
        raise MissingFileError(
            f"{path}: no {VOCAB_FILE} or {TOKENIZER_FILE} in this directory; expected a tokenizer "
            "directory (as written by save_pretrained or `paddlefunnel vocab train`)"
        )
    return path, vocab_path, None


def read_vocab_file(path: Path) -> dict[str, int]:
    """Parse with the backend's own reader so ids match the Rust side byte for byte; reject what cannot round-trip."""
    if not path.is_file():
        raise MissingFileError(f"{path}: vocabulary file not found")
    try:
        vocab = WordPiece.read_file(str(path))
    except Exception as err:  # the Rust reader reports I/O and UTF-8 problems as plain Exception
        raise InputError(
            f"{path}: cannot read the vocabulary ({err}); expected a UTF-8 text file, one token a line"
        ) from None
    if not vocab:
        raise InputError(f"{path}: the vocabulary file is empty; expected one WordPiece token a line")
    if len(vocab) != max(vocab.values()) + 1:
        _raise_duplicate(path)
    return vocab


def _raise_duplicate(path: Path) -> None:
    """Ids are not contiguous: find the repeated line to name it."""
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            token = line.rstrip()
            if token in seen:
                raise InputError(
                    f"{path}: token {token!r} appears on line {seen[token]} and again on line {line_no}; "
                    "every token must be unique (ids are line numbers)"
                )
            seen[token] = line_no
    raise InputError(f"{path}: token ids are not contiguous; expected one unique token a line")


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Vocabulary and pipeline options of a `tokenizer.json`; options are fallbacks behind tokenizer_config.json."""
    data = read_json_object(path)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "WordPiece":
        found = model.get("type") if isinstance(model, dict) else model
        raise InputError(f'{path}: expected a WordPiece model ("model": {{"type": "WordPiece"}}), found {found!r}')
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise InputError(f"{path}: model.vocab is missing or empty; expected a token -> id mapping")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise InputError(f"{path}: model.vocab ids must be the integers 0..{len(vocab) - 1}, each used once")
    extra = [
        t.get("content")
        for t in data.get("added_tokens") or []
        if isinstance(t, dict) and not t.get("special") and t.get("content") not in vocab
    ]
    if extra:
        warnings.warn(  # stacklevel: here <- read_pretrained <- FunnelTokenizer.from_pretrained <- its caller
            f"{path}: ignoring {len(extra)} added non-special token(s) {extra[:5]!r}; only the WordPiece vocabulary "
            "and the Funnel special tokens are loaded",
            stacklevel=4,
        )
    options: dict[str, Any] = {}
    if isinstance(model.get("unk_token"), str):
        options["unk_token"] = model["unk_token"]
    if isinstance(model.get("continuing_subword_prefix"), str):
        options["wordpieces_prefix"] = model["continuing_subword_prefix"]
    if isinstance(model.get("max_input_chars_per_word"), int):
        options["max_input_chars_per_word"] = model["max_input_chars_per_word"]
    norm = data.get("normalizer")
    if isinstance(norm, dict) and norm.get("type") == "BertNormalizer":
        for key, option in NORMALIZER_OPTIONS:
            if key in norm:
                options[option] = _checked(option, norm[key], path)
    return vocab, options


def _options_from_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """Pick the keys this tokenizer understands; others (transformers bookkeeping) are ignored on purpose."""
    options = {key: _checked(key, config[key], path) for key in FILE_OPTION_TYPES if key in config}
    value = config.get("model_max_length")
    if value is not None:
        try:
            options["model_max_length"] = int(value)
        except (TypeError, ValueError):
            raise InputError(f"{path}: model_max_length must be an integer, got {value!r}") from None
    options.update(_special_tokens(config, path))
    return options


def _special_tokens(data: dict[str, Any], path: Path) -> dict[str, str]:
    """The special-token names a file sets (tokenizer_config.json or special_tokens_map.json)."""
    return {
        name: _token_content(data[name], name, path) for name in SPECIAL_TOKEN_ATTRIBUTES if data.get(name) is not None
    }


def _token_content(value: Any, field: str, source: Path) -> str:
    """Special tokens appear in configs as plain strings or as serialised AddedToken dicts."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise InputError(f"{source}: {field} must be a string (or an AddedToken object with 'content'), got {value!r}")


def _checked(option: str, value: Any, path: Path) -> Any:
    """A file's value for `option`, if it has a type the constructor accepts (else the file is named)."""
    expected = FILE_OPTION_TYPES[option]
    if not isinstance(value, expected):
        names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in expected)
        raise InputError(f"{path}: {option} must be {names}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------ writing
def write_pretrained(directory: Path, backend: Tokenizer, config: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Write vocab.txt, tokenizer.json and tokenizer_config.json (each atomically) for us and transformers."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    tokens = _vocab_lines(backend)
    state = json.loads(backend.to_str())
    state["truncation"] = None  # per-call settings are not part of the saved tokenizer
    state["padding"] = None
    targets = (directory / VOCAB_FILE, directory / TOKENIZER_FILE, directory / TOKENIZER_CONFIG_FILE)
    atomic_write_text(targets[0], "\n".join(tokens) + "\n")
    atomic_write_text(targets[1], json.dumps(state, ensure_ascii=False, indent=2) + "\n")
    atomic_write_text(targets[2], json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    return targets


def _vocab_lines(backend: Tokenizer) -> list[str]:
    """The WordPiece vocabulary in id order, if every token survives the one-token-a-line format."""
    base = backend.get_vocab(with_added_tokens=False)
    tokens = [""] * len(base)
    for token, index in base.items():
        tokens[index] = token
    bad = [t for t in tokens if not t or t != t.rstrip() or "\n" in t or "\r" in t]
    if bad:
        raise InputError(
            f"cannot write {VOCAB_FILE}: tokens {bad[:5]!r} would not survive the one-token-a-line format"
        )
    return tokens
