"""Funnel-Transformer WordPiece tokenizer on the `tokenizers` (Rust) backend, id-for-id equal to `transformers`.

Released Funnel checkpoints were trained on ids from a BERT-style uncased WordPiece vocabulary whose specials are
`<cls> <sep> <pad> <unk> <mask> <s> </s>`; fine-tuning them only works if every id, token type, offset and overflow
window is exactly what `transformers.FunnelTokenizer` (5.23) produces. So this module builds the same Rust pipeline
(BertNormalizer -> BertPreTokenizer -> WordPiece -> `<cls>:2 A:0 <sep>:0 [B:1 <sep>:1]`) and follows the reference's
rules for picking padding/truncation strategies; the per-token work all happens in Rust.

Deliberate differences from the reference, all on bad input: non-string text raises TypeError (the reference says
ValueError), out-of-range ids raise instead of turning into None or vanishing, a stride that cannot fit raises
ValueError instead of a Rust panic, and outputs longer than the limit come with a `warnings.warn`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece

from .io_utils import atomic_write_text, read_json_object

__all__ = [
    "FunnelTokenizer",
    "BatchEncoding",
    "TokenizerLengthWarning",
    "VOCAB_FILE",
    "TOKENIZER_FILE",
    "TOKENIZER_CONFIG_FILE",
]

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"

# transformers' sentinels: a model_max_length above LARGE_INTEGER means "no limit known".
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

# Special tokens in the order transformers appends the ones missing from a vocabulary (so appended ids agree).
SPECIAL_TOKEN_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
DEFAULT_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "cls_token": "<cls>",
    "sep_token": "<sep>",
    "mask_token": "<mask>",
    "bos_token": "<s>",
    "eos_token": "</s>",
}
# The model cannot run without these; <s> and </s> are appended like the reference does when absent.
REQUIRED_SPECIAL_TOKENS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
# Order of the specials at the head of a freshly trained vocabulary (the reference's default vocab order).
TRAINED_SPECIAL_ORDER = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token")

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
SIDES = ("right", "left")
TENSOR_TYPES = (None, "np", "pd")
CLS_TOKEN_TYPE_ID = 2
PAD_TOKEN_TYPE_ID = 0
DEFAULT_TRAINED_MAX_LENGTH = 512  # the sequence length the released Funnel checkpoints were pre-trained with


class TokenizerLengthWarning(UserWarning):
    """An encoded sequence is longer than `max_length` (or `model_max_length`) and was not truncated."""


class BatchEncoding(dict):
    """The model inputs as a dict, plus the Rust encodings for token/word/sequence lookups (SQuAD-style labelling)."""

    def __init__(self, data: Mapping[str, Any], encodings: list[Any]) -> None:
        super().__init__(data)
        self.encodings = encodings

    def tokens(self, index: int = 0) -> list[str]:
        return self.encodings[index].tokens

    def sequence_ids(self, index: int = 0) -> list[int | None]:
        """0/1 for tokens of the first/second text, None for specials and padding: locates the context in a window."""
        return self.encodings[index].sequence_ids

    def word_ids(self, index: int = 0) -> list[int | None]:
        return self.encodings[index].word_ids


def _type_name(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not _is_int(value) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name}={value!r} is invalid: expected {expected}")


def _token_content(value: Any, field: str, source: str) -> str:
    """Special tokens appear in configs as plain strings or as serialised AddedToken dicts."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise ValueError(f"{source}: {field} must be a string (or an AddedToken object with 'content'), got {value!r}")


def _read_vocab_file(path: Path) -> dict[str, int]:
    """Parse with the backend's own reader so ids match the Rust side byte for byte; reject what cannot round-trip."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vocabulary file not found")
    try:
        vocab = WordPiece.read_file(str(path))
    except Exception as err:  # the Rust reader reports I/O and UTF-8 problems as plain Exception
        raise ValueError(
            f"{path}: cannot read the vocabulary ({err}); expected a UTF-8 text file, one token a line"
        ) from None
    if not vocab:
        raise ValueError(f"{path}: the vocabulary file is empty; expected one WordPiece token a line")
    if len(vocab) != max(vocab.values()) + 1:
        seen: dict[str, int] = {}
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                token = line.rstrip()
                if token in seen:
                    raise ValueError(
                        f"{path}: token {token!r} appears on line {seen[token]} and again on line {line_no}; "
                        "every token must be unique (ids are line numbers)"
                    )
                seen[token] = line_no
        raise ValueError(f"{path}: token ids are not contiguous; expected one unique token a line")
    return vocab


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Vocabulary and pipeline options of a `tokenizer.json`; options are fallbacks behind tokenizer_config.json."""
    data = read_json_object(path)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "WordPiece":
        found = model.get("type") if isinstance(model, dict) else model
        raise ValueError(f'{path}: expected a WordPiece model ("model": {{"type": "WordPiece"}}), found {found!r}')
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path}: model.vocab is missing or empty; expected a token -> id mapping")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{path}: model.vocab ids must be the integers 0..{len(vocab) - 1}, each used once")
    extra = [
        t.get("content")
        for t in data.get("added_tokens") or []
        if isinstance(t, dict) and not t.get("special") and t.get("content") not in vocab
    ]
    if extra:
        warnings.warn(
            f"{path}: ignoring {len(extra)} added non-special token(s) {extra[:5]!r}; only the WordPiece vocabulary "
            "and the Funnel special tokens are loaded",
            stacklevel=3,
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
        for key, option in (
            ("lowercase", "do_lower_case"),
            ("strip_accents", "strip_accents"),
            ("handle_chinese_chars", "tokenize_chinese_chars"),
            ("clean_text", "clean_text"),
        ):
            if key in norm:
                options[option] = norm[key]
    return vocab, options


class FunnelTokenizer:
    """WordPiece tokenizer for Funnel-Transformer: the reference's ids, offsets and windows at Rust speed.

    Build it with `from_pretrained(dir)`, `train(files, vocab_size)` / `train_from_iterator(texts, vocab_size)`, or
    directly from a `vocab.txt` path or a token -> id mapping.
    """

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    cls_token_type_id = CLS_TOKEN_TYPE_ID
    pad_token_type_id = PAD_TOKEN_TYPE_ID

    def __init__(
        self,
        vocab: str | os.PathLike | Mapping[str, int],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        clean_text: bool = True,
        wordpieces_prefix: str = "##",
        max_input_chars_per_word: int = 100,
        unk_token: str = "<unk>",
        sep_token: str = "<sep>",
        pad_token: str = "<pad>",
        cls_token: str = "<cls>",
        mask_token: str = "<mask>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        model_max_length: int = VERY_LARGE_INTEGER,
        padding_side: str = "right",
        truncation_side: str = "right",
    ) -> None:
        if isinstance(vocab, (str, os.PathLike)):
            source = str(vocab)
            vocab = _read_vocab_file(Path(vocab))
        elif isinstance(vocab, Mapping):
            source = "the vocab mapping"
            if not vocab:
                raise ValueError("vocab: the mapping is empty; expected token -> id entries")
            if not all(isinstance(k, str) for k in vocab) or sorted(vocab.values()) != list(range(len(vocab))):
                raise ValueError(f"vocab: expected str tokens with ids 0..{len(vocab) - 1}, each id used once")
            vocab = dict(vocab)
        else:
            raise TypeError(f"vocab must be a path to vocab.txt or a token -> id mapping, got {_type_name(vocab)}")

        for name, value in (
            ("do_lower_case", do_lower_case),
            ("tokenize_chinese_chars", tokenize_chinese_chars),
            ("clean_text", clean_text),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {_type_name(value)}")
        if strip_accents is not None and not isinstance(strip_accents, bool):
            raise TypeError(f"strip_accents must be a bool or None, got {_type_name(strip_accents)}")
        if not isinstance(wordpieces_prefix, str):
            raise TypeError(f"wordpieces_prefix must be a str, got {_type_name(wordpieces_prefix)}")
        _check_int("max_input_chars_per_word", max_input_chars_per_word, 1)
        _check_int("model_max_length", model_max_length, 1)
        for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if side not in SIDES:
                raise ValueError(f"{name}={side!r} is invalid: expected one of {list(SIDES)}")

        specials = {
            "unk_token": unk_token,
            "sep_token": sep_token,
            "pad_token": pad_token,
            "cls_token": cls_token,
            "mask_token": mask_token,
            "bos_token": bos_token,
            "eos_token": eos_token,
        }
        for name, token in specials.items():
            if not isinstance(token, str) or not token:
                raise TypeError(f"{name} must be a non-empty str, got {token!r}")
        missing = [f"{specials[name]} ({name})" for name in REQUIRED_SPECIAL_TOKENS if specials[name] not in vocab]
        if missing:
            raise ValueError(
                f"{source}: the vocabulary lacks the special token(s) {', '.join(missing)}; a Funnel vocabulary "
                "needs <pad> <unk> <cls> <sep> <mask> (rename BERT's [PAD] [UNK] [CLS] [SEP] [MASK], or pass the "
                "names your vocabulary uses)"
            )

        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text
        self.wordpieces_prefix = wordpieces_prefix
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.model_max_length = int(model_max_length)
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self._specials = specials

        backend = Tokenizer(
            WordPiece(
                vocab,
                unk_token=unk_token,
                continuing_subword_prefix=wordpieces_prefix,
                max_input_chars_per_word=self.max_input_chars_per_word,
            )
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=clean_text,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix=wordpieces_prefix)
        # Specials are matched in raw text (not normalised), as in the reference; absent ones get the next ids.
        backend.add_special_tokens(
            [AddedToken(specials[name], special=True, normalized=False) for name in SPECIAL_TOKEN_ATTRIBUTES]
        )
        cls_id, sep_id = backend.token_to_id(cls_token), backend.token_to_id(sep_token)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls_token}:{CLS_TOKEN_TYPE_ID} $A:0 {sep_token}:0",
            pair=f"{cls_token}:{CLS_TOKEN_TYPE_ID} $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
        )
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._truncation_state: tuple | None = None
        self._padding_state: tuple | None = None
        self._special_ids = {name: backend.token_to_id(token) for name, token in specials.items()}
        self._all_special_ids = frozenset(self._special_ids.values())

    # ------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> "FunnelTokenizer":
        """Load a directory with `vocab.txt` or `tokenizer.json` (+ `tokenizer_config.json`), or either file itself.

        `tokenizer.json` wins over `vocab.txt` (as in transformers); options come from `tokenizer_config.json`,
        then `special_tokens_map.json` and the normaliser stored in `tokenizer.json`, then the defaults; keyword
        arguments override them all.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {_type_name(path)}")
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such tokenizer directory or file")
        if path.is_dir():
            directory, vocab_path, json_path = path, path / VOCAB_FILE, path / TOKENIZER_FILE
            if not json_path.is_file():
                json_path = None
                if not vocab_path.is_file():
                    raise FileNotFoundError(
                        f"{path}: no {VOCAB_FILE} or {TOKENIZER_FILE} in this directory; expected a tokenizer "
                        "directory (as written by save_pretrained or `paddlefunnel vocab train`)"
                    )
        elif path.suffix == ".json":
            directory, vocab_path, json_path = path.parent, None, path
        else:
            directory, vocab_path, json_path = path.parent, path, None

        options: dict[str, Any] = {}
        if json_path is not None:
            vocab, file_options = _read_tokenizer_json(json_path)
            options.update(file_options)
            source = str(json_path)
        else:
            vocab = _read_vocab_file(vocab_path)
            source = str(vocab_path)
        special_map_path = directory / SPECIAL_TOKENS_MAP_FILE  # older hub layouts keep the names here
        if special_map_path.is_file():
            special_map = read_json_object(special_map_path)
            for name in SPECIAL_TOKEN_ATTRIBUTES:
                if special_map.get(name) is not None:
                    options[name] = _token_content(special_map[name], name, str(special_map_path))
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file():
            options.update(cls._options_from_config(read_json_object(config_path), config_path))
        options.update(overrides)
        try:
            return cls(vocab, **options)
        except ValueError as err:
            message = str(err).replace("the vocab mapping", source)
            raise ValueError(message) from None

    @staticmethod
    def _options_from_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
        """Pick the keys this tokenizer understands; others (transformers bookkeeping) are ignored on purpose."""
        options: dict[str, Any] = {}
        for key in (
            "do_lower_case",
            "strip_accents",
            "tokenize_chinese_chars",
            "clean_text",
            "wordpieces_prefix",
            "padding_side",
            "truncation_side",
        ):
            if key in config:
                options[key] = config[key]
        if config.get("model_max_length") is not None:
            options["model_max_length"] = int(config["model_max_length"])
        for name in SPECIAL_TOKEN_ATTRIBUTES:
            if config.get(name) is not None:
                options[name] = _token_content(config[name], name, str(path))
        return options

    def save_pretrained(self, directory: str | os.PathLike) -> tuple[Path, Path, Path]:
        """Write vocab.txt, tokenizer.json and tokenizer_config.json (each atomically) for us and transformers."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory}: exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)

        base = self._backend.get_vocab(with_added_tokens=False)
        tokens = [""] * len(base)
        for token, index in base.items():
            tokens[index] = token
        bad = [t for t in tokens if not t or t != t.rstrip() or "\n" in t or "\r" in t]
        if bad:
            raise ValueError(
                f"cannot write {VOCAB_FILE}: tokens {bad[:5]!r} would not survive the one-token-a-line format"
            )

        state = json.loads(self._backend.to_str())
        state["truncation"] = None  # per-call settings are not part of the saved tokenizer
        state["padding"] = None

        config = {
            "tokenizer_class": "FunnelTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "clean_text": self.clean_text,
            "wordpieces_prefix": self.wordpieces_prefix,
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            **{name: self._specials[name] for name in SPECIAL_TOKEN_ATTRIBUTES},
        }
        targets = (directory / VOCAB_FILE, directory / TOKENIZER_FILE, directory / TOKENIZER_CONFIG_FILE)
        atomic_write_text(targets[0], "\n".join(tokens) + "\n")
        atomic_write_text(targets[1], json.dumps(state, ensure_ascii=False, indent=2) + "\n")
        atomic_write_text(targets[2], json.dumps(config, ensure_ascii=False, indent=2) + "\n")
        return targets

    # ------------------------------------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        files: str | os.PathLike | Sequence[str | os.PathLike],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        show_progress: bool = True,
        **options: Any,
    ) -> "FunnelTokenizer":
        """Train a WordPiece vocabulary on text files (one or more documents per file, read line by line).

        The Funnel specials take ids 0-6 (`<pad> <unk> <cls> <sep> <mask> <s> </s>`); `options` are the constructor's
        (do_lower_case, strip_accents, ..., model_max_length, default 512). Training is deterministic.
        """
        if isinstance(files, (str, os.PathLike)):
            files = [files]
        if not isinstance(files, Sequence) or not files:
            raise ValueError(f"files must be a path or a non-empty list of paths, got {files!r}")
        paths = []
        for item in files:
            if not isinstance(item, (str, os.PathLike)):
                raise TypeError(f"files must contain paths, got {_type_name(item)}")
            path = Path(item)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: corpus file not found")
            paths.append(str(path))
        if all(Path(p).stat().st_size == 0 for p in paths):
            raise ValueError(f"corpus files {paths} are all empty; expected text to learn a vocabulary from")

        def feed(backend: Tokenizer, trainer: trainers.WordPieceTrainer) -> None:
            backend.train(paths, trainer)

        return cls._train(feed, vocab_size, min_frequency, limit_alphabet, show_progress, options)

    @classmethod
    def train_from_iterator(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        show_progress: bool = True,
        **options: Any,
    ) -> "FunnelTokenizer":
        """Train from in-memory texts (e.g. the demo's built-in corpus); same result as `train` on the same lines."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be an iterable of str (a list of documents), got {_type_name(texts)}")
        texts = list(texts)  # two passes over the data (see _train), so a one-shot iterator is materialised
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] must be a str, got {_type_name(text)}")
        if not any(text.strip() for text in texts):
            raise ValueError("texts contains no non-whitespace text; expected a corpus to learn a vocabulary from")

        def feed(backend: Tokenizer, trainer: trainers.WordPieceTrainer) -> None:
            backend.train_from_iterator(texts, trainer, length=len(texts))

        return cls._train(feed, vocab_size, min_frequency, limit_alphabet, show_progress, options)

    @classmethod
    def _train(
        cls,
        feed: Any,
        vocab_size: int,
        min_frequency: int,
        limit_alphabet: int,
        show_progress: bool,
        options: dict[str, Any],
    ) -> "FunnelTokenizer":
        """Two passes because the Rust trainer numbers `##x` pieces in hash order, which changes merge tie-breaks.

        Pass 1 (no merges) lists the continuation pieces; pass 2 registers them, sorted, right after the specials,
        which fixes every id and therefore the learned vocabulary.
        """
        _check_int("vocab_size", vocab_size, len(TRAINED_SPECIAL_ORDER) + 1)
        _check_int("min_frequency", min_frequency, 0)
        _check_int("limit_alphabet", limit_alphabet, 1)
        options.setdefault("model_max_length", DEFAULT_TRAINED_MAX_LENGTH)
        names = {name: options.get(name, DEFAULT_SPECIAL_TOKENS[name]) for name in TRAINED_SPECIAL_ORDER}
        specials = [names[name] for name in TRAINED_SPECIAL_ORDER]
        if len(set(specials)) != len(specials):
            raise ValueError(f"the special tokens must be distinct, got {specials}")
        cls({token: index for index, token in enumerate(specials)}, **options)  # bad options fail before training
        prefix = options.get("wordpieces_prefix", "##")

        def fresh_backend() -> Tokenizer:
            backend = Tokenizer(WordPiece(unk_token=names["unk_token"], continuing_subword_prefix=prefix))
            backend.normalizer = normalizers.BertNormalizer(
                clean_text=options.get("clean_text", True),
                handle_chinese_chars=options.get("tokenize_chinese_chars", True),
                strip_accents=options.get("strip_accents"),
                lowercase=options.get("do_lower_case", True),
            )
            backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            return backend

        def make_trainer(size: int, seeds: list[str]) -> trainers.WordPieceTrainer:
            return trainers.WordPieceTrainer(
                vocab_size=size,
                min_frequency=min_frequency,
                show_progress=show_progress,
                special_tokens=specials + seeds,
                limit_alphabet=limit_alphabet,
                continuing_subword_prefix=prefix,
            )

        probe = fresh_backend()
        feed(probe, make_trainer(0, []))
        pieces = probe.get_vocab(with_added_tokens=False)
        seeds = sorted(t for t in pieces if t.startswith(prefix) and t not in specials)
        backend = fresh_backend()
        feed(backend, make_trainer(vocab_size, seeds))
        vocab = backend.get_vocab(with_added_tokens=False)
        if len(vocab) < vocab_size:
            warnings.warn(
                f"the corpus only supports {len(vocab)} tokens (asked for vocab_size={vocab_size}); "
                "add text or lower min_frequency for a bigger vocabulary",
                stacklevel=3,
            )
        return cls(vocab, **options)

    # ------------------------------------------------------------------------------------------- vocabulary
    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The Rust `tokenizers.Tokenizer`, for advanced use; calls on this tokenizer set its truncation/padding."""
        self._truncation_state = self._padding_state = ("unknown",)  # the caller may change them: re-set next call
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the WordPiece vocabulary, without specials appended after it."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def __repr__(self) -> str:
        return (
            f"FunnelTokenizer(vocab_size={len(self)}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
            f"model_max_length={self.model_max_length})"
        )

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: self._specials[name] for name in SPECIAL_TOKEN_ATTRIBUTES}

    @property
    def all_special_tokens(self) -> list[str]:
        return [self._specials[name] for name in SPECIAL_TOKEN_ATTRIBUTES]

    @property
    def all_special_ids(self) -> list[int]:
        return [self._special_ids[name] for name in SPECIAL_TOKEN_ATTRIBUTES]

    unk_token = property(lambda self: self._specials["unk_token"])
    sep_token = property(lambda self: self._specials["sep_token"])
    pad_token = property(lambda self: self._specials["pad_token"])
    cls_token = property(lambda self: self._specials["cls_token"])
    mask_token = property(lambda self: self._specials["mask_token"])
    bos_token = property(lambda self: self._specials["bos_token"])
    eos_token = property(lambda self: self._specials["eos_token"])
    unk_token_id = property(lambda self: self._special_ids["unk_token"])
    sep_token_id = property(lambda self: self._special_ids["sep_token"])
    pad_token_id = property(lambda self: self._special_ids["pad_token"])
    cls_token_id = property(lambda self: self._special_ids["cls_token"])
    mask_token_id = property(lambda self: self._special_ids["mask_token"])
    bos_token_id = property(lambda self: self._special_ids["bos_token"])
    eos_token_id = property(lambda self: self._special_ids["eos_token"])

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Unknown tokens map to the `<unk>` id, as in the reference."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            index = self._backend.token_to_id(tokens)
            return unk if index is None else index
        if not isinstance(tokens, Sequence):
            raise TypeError(f"tokens must be a str or a list of str, got {_type_name(tokens)}")
        to_id = self._backend.token_to_id
        try:
            ids = [to_id(token) for token in tokens]
        except TypeError:
            bad = next(t for t in tokens if not isinstance(t, str))
            raise TypeError(f"tokens must contain only str, got {_type_name(bad)}") from None
        return [unk if index is None else index for index in ids]

    def _ids_list(self, ids: Any, argument: str) -> list[int]:
        """Accept lists, numpy arrays and paddle tensors; reject ids the vocabulary does not have."""
        if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
            ids = ids.numpy()
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise TypeError(f"{argument} must be a 1-D array of integers, got shape {ids.shape} dtype {ids.dtype}")
            ids = ids.tolist()
        elif isinstance(ids, tuple):
            ids = list(ids)
        elif not isinstance(ids, list):
            raise TypeError(
                f"{argument} must be a list of int, a numpy array or a paddle tensor, got {_type_name(ids)}"
            )
        if ids:
            try:  # min/max run in C; a non-int anywhere else is caught by the backend call (see _backend_ids)
                low, high = min(ids), max(ids)
            except TypeError:
                low = high = None
            if not (_is_int(low) and _is_int(high)):
                bad = next((i for i in ids if not _is_int(i)), low)
                raise TypeError(f"{argument} must contain only int, got {_type_name(bad)}")
            if low < 0 or high >= len(self):
                raise ValueError(
                    f"{argument} contains id {low if low < 0 else high}, outside the vocabulary [0, {len(self)})"
                )
        return ids

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
            token = self._backend.id_to_token(int(ids))
            if token is None:
                raise ValueError(f"ids={int(ids)} is outside the vocabulary [0, {len(self)})")
            return token
        ids = self._ids_list(ids, "ids")
        if skip_special_tokens:
            special = self._all_special_ids
            ids = [i for i in ids if i not in special]
        try:
            return list(map(self._backend.id_to_token, ids))
        except TypeError:
            bad = next(i for i in ids if not _is_int(i))
            raise TypeError(f"ids must contain only int, got {_type_name(bad)}") from None

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str | list[str]:
        """Ids back to text (lower-cased, accents stripped: WordPiece cannot restore them); 2-D input -> list[str]."""
        if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
            ids = ids.numpy()
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
            ids = [int(ids)]
        if isinstance(ids, np.ndarray) and ids.ndim == 2:
            return self.batch_decode(ids, skip_special_tokens=skip_special_tokens)
        if isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray)):
            return self.batch_decode(ids, skip_special_tokens=skip_special_tokens)
        ids = self._ids_list(ids, "ids")
        try:
            return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        except TypeError:
            bad = next(i for i in ids if not _is_int(i))
            raise TypeError(f"ids must contain only int, got {_type_name(bad)}") from None

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        if hasattr(sequences, "numpy") and not isinstance(sequences, np.ndarray):
            sequences = sequences.numpy()
        if isinstance(sequences, np.ndarray) and sequences.ndim != 2:
            raise TypeError(f"sequences must be 2-D (batch, length), got shape {sequences.shape}")
        if not isinstance(sequences, (list, tuple, np.ndarray)):
            raise TypeError(f"sequences must be a list of id lists or a 2-D array, got {_type_name(sequences)}")
        checked = [self._ids_list(seq, f"sequences[{i}]") for i, seq in enumerate(sequences)]
        try:
            return self._backend.decode_batch(checked, skip_special_tokens=skip_special_tokens)
        except TypeError:
            raise TypeError("sequences must contain only int ids") from None

    # ------------------------------------------------------------------------------------------- encoding
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """WordPiece tokens of one text (or pair), without padding or truncation."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_type_name(text)}")
        if pair is not None and not isinstance(pair, str):
            raise TypeError(f"pair must be a str or None, got {_type_name(pair)}")
        self._configure(None, None)
        inputs = [(text, pair)] if pair else [text]  # the reference also drops an empty pair
        return self._encode_batch(inputs, add_special_tokens, "do_not_truncate", None, 0)[0].tokens

    def encode(self, text: str, text_pair: str | None = None, **kwargs: Any) -> list[int]:
        """Input ids of one text (or pair); keyword arguments as for calling the tokenizer."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_type_name(text)}")
        return self(text, text_pair, **kwargs)["input_ids"]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode one text/pair or a batch: `<cls> A <sep> [B <sep>]` with token types 2, 0.., 1...

        Strategy rules are the reference's: `max_length` alone turns on longest_first truncation; `padding=True` is
        "longest"; without `max_length`, "max_length" padding and truncation use `model_max_length` (or are off when
        it is unknown). `return_overflowing_tokens` returns every window (`stride` tokens of overlap) plus
        `overflow_to_sample_mapping`. A single text (not a list) gives un-batched lists unless tensors or overflow
        windows are asked for; as in the reference, a single `text_pair=""` counts as no pair.
        """
        batched, inputs = self._prepare_inputs(text, text_pair)
        padding_strategy, truncation_strategy, max_length = self._strategies(
            padding, truncation, max_length, pad_to_multiple_of, verbose
        )
        _check_int("stride", stride, 0)
        if padding_side is not None and padding_side not in SIDES:
            raise ValueError(f"padding_side={padding_side!r} is invalid: expected one of {list(SIDES)} or None")
        if return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors={return_tensors!r} is invalid: expected None, 'np' or 'pd'")
        is_pair = bool(inputs) and isinstance(inputs[0], tuple)
        if truncation_strategy != "do_not_truncate":
            budget = max_length - (self.num_special_tokens_to_add(is_pair) if add_special_tokens else 0)
            if stride > 0 and stride >= budget:
                raise ValueError(
                    f"stride={stride} is too large for max_length={max_length}: a window holds at most {budget} "
                    "text tokens after the special tokens, and stride must be smaller than that"
                )

        pad_length = max_length if padding_strategy == "max_length" else None
        self._configure(
            None if truncation_strategy == "do_not_truncate" else (max_length, stride, truncation_strategy),
            None
            if padding_strategy == "do_not_pad"
            else (pad_length, padding_side or self.padding_side, pad_to_multiple_of),
        )
        encodings = self._encode_batch(inputs, add_special_tokens, truncation_strategy, max_length, stride)

        if return_overflowing_tokens:
            flat, mapping = [], []
            for index, encoding in enumerate(encodings):
                windows = encoding.overflowing
                flat.append(encoding)
                flat.extend(windows)
                mapping.extend([index] * (1 + len(windows)))
            encodings = flat

        data: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
        if return_token_type_ids:
            data["token_type_ids"] = [e.type_ids for e in encodings]
        if return_attention_mask:
            data["attention_mask"] = [e.attention_mask for e in encodings]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in encodings]
        if return_length:
            data["length"] = [len(ids) for ids in data["input_ids"]]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping

        if verbose and data["input_ids"]:
            self._warn_if_too_long(data["input_ids"], max_length, truncation_strategy)

        if return_tensors is not None:
            data = self._to_tensors(data, return_tensors)
        elif not batched and not return_overflowing_tokens:
            data = {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}
        return BatchEncoding(data, encodings)

    def _prepare_inputs(self, text: Any, text_pair: Any) -> tuple[bool, list]:
        if isinstance(text, str):
            if text_pair is not None and not isinstance(text_pair, str):
                raise TypeError(f"text_pair must be a str (like text) or None, got {_type_name(text_pair)}")
            return False, [(text, text_pair)] if text_pair else [text]
        if not isinstance(text, (list, tuple)):
            raise TypeError(f"text must be a str or a list of str, got {_type_name(text)}")
        texts = text if isinstance(text, list) else list(text)
        if not all(isinstance(t, str) for t in texts):
            bad_index, bad = next((i, t) for i, t in enumerate(texts) if not isinstance(t, str))
            if isinstance(bad, (list, tuple)):
                raise TypeError(
                    f"text[{bad_index}] is a {_type_name(bad)}: pre-tokenized input is not supported; pass strings"
                )
            raise TypeError(f"text[{bad_index}] must be a str, got {_type_name(bad)}")
        if text_pair is None:
            return True, texts
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
            raise TypeError(
                f"text_pair must be a list of str with one entry per text (or None), got {_type_name(text_pair)}"
            )
        if len(text_pair) != len(texts):
            raise ValueError(f"text has {len(texts)} entries but text_pair has {len(text_pair)}; they must match")
        if not all(isinstance(t, str) for t in text_pair):
            bad_index, bad = next((i, t) for i, t in enumerate(text_pair) if not isinstance(t, str))
            raise TypeError(f"text_pair[{bad_index}] must be a str, got {_type_name(bad)}")
        return True, list(zip(texts, text_pair))

    def _strategies(
        self, padding: Any, truncation: Any, max_length: Any, pad_to_multiple_of: Any, verbose: bool
    ) -> tuple[str, str, int | None]:
        """transformers' `_get_padding_truncation_strategies`, with errors that name the argument."""
        _check_int("max_length", max_length, 1, allow_none=True)
        _check_int("pad_to_multiple_of", pad_to_multiple_of, 1, allow_none=True)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # the reference's backward-compatible default
        if padding is True:
            if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                warnings.warn(
                    "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                    "To pad to max length, use `padding='max_length'`.",
                    stacklevel=3,
                )
            padding_strategy = "longest"
        elif padding is False or padding is None:
            padding_strategy = "do_not_pad"
        elif padding in PADDING_STRATEGIES:
            padding_strategy = padding
        else:
            raise ValueError(
                f"padding={padding!r} is invalid: expected True, False or one of {list(PADDING_STRATEGIES)}"
            )
        if truncation is True:
            truncation_strategy = "longest_first"
        elif truncation is False or truncation is None:
            truncation_strategy = "do_not_truncate"
        elif truncation in TRUNCATION_STRATEGIES:
            truncation_strategy = truncation
        else:
            raise ValueError(
                f"truncation={truncation!r} is invalid: expected True, False, None or one of "
                f"{list(TRUNCATION_STRATEGIES)}"
            )
        if max_length is None:
            known = self.model_max_length <= LARGE_INTEGER
            if padding_strategy == "max_length":
                if known:
                    max_length = self.model_max_length
                else:
                    padding_strategy = "do_not_pad"
            if truncation_strategy != "do_not_truncate":
                if known:
                    max_length = self.model_max_length
                else:
                    truncation_strategy = "do_not_truncate"
        if (
            truncation_strategy != "do_not_truncate"
            and padding_strategy != "do_not_pad"
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of
        ):
            raise ValueError(
                f"truncation length max_length={max_length} is not a multiple of "
                f"pad_to_multiple_of={pad_to_multiple_of}"
            )
        return padding_strategy, truncation_strategy, max_length

    def _configure(self, truncation: tuple | None, padding: tuple | None) -> None:
        """Set the backend's truncation/padding only when they change: re-setting costs more than small encodes."""
        if truncation is not None:
            truncation = (*truncation, self.truncation_side)
        if truncation != self._truncation_state:
            if truncation is None:
                self._backend.no_truncation()
            else:
                max_length, stride, strategy, side = truncation
                self._backend.enable_truncation(max_length, stride=stride, strategy=strategy, direction=side)
            self._truncation_state = truncation
        if padding != self._padding_state:
            if padding is None:
                self._backend.no_padding()
            else:
                length, side, multiple = padding
                self._backend.enable_padding(
                    direction=side,
                    pad_id=self.pad_token_id,
                    pad_type_id=PAD_TOKEN_TYPE_ID,
                    pad_token=self.pad_token,
                    length=length,
                    pad_to_multiple_of=multiple,
                )
            self._padding_state = padding

    def _encode_batch(
        self, inputs: list, add_special_tokens: bool, strategy: str, max_length: int | None, stride: int
    ) -> list:
        """Run the Rust encoder; its truncation errors (and its stride panic) become ValueErrors naming arguments."""
        try:
            return self._backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        except Exception as err:
            message = str(err)
            self._raise_if_not_utf8(inputs)
            if "too short" in message:
                raise ValueError(
                    f"truncation={strategy!r} cannot fit a pair into max_length={max_length}: the sequence it may cut "
                    "is too short; use truncation='longest_first' or a larger max_length"
                ) from None
            if "Second sequence not provided" in message:
                raise ValueError(
                    "truncation='only_second' needs a text_pair; use 'longest_first' or 'only_first'"
                ) from None
            raise ValueError(f"the tokenizer backend rejected the input: {message}") from None
        except BaseException as err:
            if type(err).__name__ != "PanicException":  # pyo3's panic type is not importable; match it by name
                raise
            raise ValueError(
                f"stride={stride} is too large for max_length={max_length} with truncation={strategy!r}: after "
                "truncation a sequence keeps no more than stride tokens; lower stride or raise max_length "
                f"(backend: {str(err).splitlines()[0] if str(err) else 'panic'})"
            ) from None

    @staticmethod
    def _raise_if_not_utf8(inputs: list) -> None:
        """The backend reports lone surrogates as a type error; say which text holds them instead."""
        for index, item in enumerate(inputs):
            for name, text in zip(("text", "text_pair"), item if isinstance(item, tuple) else (item,)):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as err:
                    where = f"{name}[{index}]" if len(inputs) > 1 else name
                    raise ValueError(
                        f"{where} is not valid Unicode: {err.reason} at character {err.start} "
                        f"({text[err.start:err.end]!r}); expected text that can be encoded as UTF-8"
                    ) from None

    def _warn_if_too_long(self, ids: list[list[int]], max_length: int | None, truncation_strategy: str) -> None:
        limit = max_length if max_length is not None else self.model_max_length
        longest = max(map(len, ids))
        if longest > limit:
            what = f"max_length={max_length}" if max_length is not None else f"model_max_length={self.model_max_length}"
            if truncation_strategy == "do_not_truncate":
                reason = "truncation is off"
            else:
                reason = "max_length leaves no room after the special tokens"
            warnings.warn(
                f"an encoded sequence has {longest} tokens, more than {what}, and was kept whole because {reason}; "
                "running it through the model may fail (pass truncation=True to cut it)",
                TokenizerLengthWarning,
                stacklevel=3,
            )

    @staticmethod
    def _to_tensors(data: dict[str, Any], kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key != "length" and key != "overflow_to_sample_mapping":
                lengths = set(map(len, value))
                if len(lengths) > 1:
                    raise ValueError(
                        f"cannot make a tensor of {key}: the sequences have different lengths {sorted(lengths)[:5]}; "
                        "pass padding=True (or 'max_length') to get equal lengths"
                    )
            array = np.asarray(value, dtype=np.int64)
            if key == "offset_mapping" and array.ndim == 2:  # every sequence empty: keep the (batch, 0, 2) shape
                array = array.reshape(len(value), 0, 2)
            out[key] = array
        if kind == "pd":
            import paddle  # lazily: tokenising should not pay for importing paddle

            out = {key: paddle.to_tensor(array) for key, array in out.items()}
        return out
