"""Funnel-Transformer configuration, read and written in the HuggingFace `config.json` format.

Field names and defaults follow `transformers` 5.23 `FunnelConfig`, so a hub directory loads as it is and a
directory we write loads in `transformers`. Keys we do not know are kept and written back, never dropped.
"""

from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from .config_layouts import read_config_dict, require_config_file
from .errors import InputError
from .hub import CONFIG, resolve_pretrained
from .io_utils import atomic_write_text
from .registry import CONFIG_FILE


ATTENTION_TYPES = ("relative_shift", "factorized")
POOLING_TYPES = ("mean", "max")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")
# Activations the model implements (names as in transformers' ACT2FN).
HIDDEN_ACTS = (
    "gelu_new",
    "gelu",
    "gelu_python",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "quick_gelu",
    "relu",
    "silu",
    "swish",
    "tanh",
    "sigmoid",
    "mish",
    "linear",
)

# Funnel-specific fields with the reference defaults.
_FUNNEL_DEFAULTS: dict[str, Any] = {
    "vocab_size": 30522,
    "block_sizes": [4, 4, 4],
    "block_repeats": None,
    "num_decoder_layers": 2,
    "d_model": 768,
    "n_head": 12,
    "d_head": 64,
    "d_inner": 3072,
    "hidden_act": "gelu_new",
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "initializer_range": 0.1,
    "initializer_std": None,
    "layer_norm_eps": 1e-9,
    "pooling_type": "mean",
    "attention_type": "relative_shift",
    "separate_cls": True,
    "truncate_seq": True,
    "pool_q_only": True,
    "pad_token_id": None,
    "tie_word_embeddings": True,
}

# Generic fields of transformers' PreTrainedConfig that change behaviour here.
_GENERIC_DEFAULTS: dict[str, Any] = {
    "architectures": None,
    "problem_type": None,
    "output_hidden_states": False,
    "output_attentions": False,
    "return_dict": True,
}

# Names transformers exposes as aliases of Funnel fields.
_ATTRIBUTE_MAP = {"hidden_size": "d_model", "num_attention_heads": "n_head"}


class FunnelConfig:
    """Every hyperparameter of a Funnel-Transformer, validated on construction."""

    model_type = "funnel"

    def __init__(self, **kwargs: Any) -> None:
        for alias, name in _ATTRIBUTE_MAP.items():
            if alias in kwargs:
                kwargs.setdefault(name, kwargs.pop(alias))
        for name, default in {**_FUNNEL_DEFAULTS, **_GENERIC_DEFAULTS}.items():
            setattr(self, name, copy.deepcopy(kwargs.pop(name, default)))
        self.block_sizes = list(self.block_sizes)
        if self.block_repeats is None:
            self.block_repeats = [1] * len(self.block_sizes)
        self.block_repeats = list(self.block_repeats)
        self._set_labels(kwargs.pop("id2label", None), kwargs.pop("label2id", None), kwargs.pop("num_labels", None))
        kwargs.pop("model_type", None)
        # Everything else (transformers_version, dtype, task-specific keys, ...) survives a round trip.
        self.extra: dict[str, Any] = kwargs
        self.validate()

    # ----------------------------------------------------------------------------------------- labels
    def _set_labels(self, id2label: dict | None, label2id: dict | None, num_labels: int | None) -> None:
        if id2label is not None:
            id2label = {int(k): v for k, v in id2label.items()}
        elif label2id is not None:
            id2label = {int(v): k for k, v in label2id.items()}
        else:
            id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else num_labels)}
        if num_labels is not None and num_labels != len(id2label):
            id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        self.id2label: dict[int, str] = id2label
        self.label2id: dict[str, int] = {v: k for k, v in id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        self._set_labels(None, None, value)

    # ------------------------------------------------------------------------------------ derived sizes
    @property
    def num_blocks(self) -> int:
        return len(self.block_sizes)

    @property
    def num_hidden_layers(self) -> int:
        return sum(self.block_sizes)

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    # ---------------------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise InputError (a ValueError) naming the field and what was expected; called on every construction."""

        def fail(field: str, expected: str) -> None:
            raise InputError(f"FunnelConfig.{field}={getattr(self, field)!r} is invalid: expected {expected}")

        for field in ("vocab_size", "d_model", "n_head", "d_head", "d_inner"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(field, "a positive integer")
        if not isinstance(self.num_decoder_layers, int) or self.num_decoder_layers < 0:
            fail("num_decoder_layers", "an integer >= 0")
        if not self.block_sizes:
            fail("block_sizes", "a non-empty list of positive integers")
        if any(not isinstance(v, int) or v <= 0 for v in self.block_sizes):
            fail("block_sizes", "a non-empty list of positive integers")
        if len(self.block_repeats) != len(self.block_sizes):
            fail("block_repeats", f"one positive integer per block ({len(self.block_sizes)} values, like block_sizes)")
        if any(not isinstance(v, int) or v <= 0 for v in self.block_repeats):
            fail("block_repeats", "positive integers")
        if self.attention_type not in ATTENTION_TYPES:
            fail("attention_type", f"one of {list(ATTENTION_TYPES)}")
        if self.pooling_type not in POOLING_TYPES:
            fail("pooling_type", f"one of {list(POOLING_TYPES)}")
        if self.hidden_act not in HIDDEN_ACTS:
            fail("hidden_act", f"one of {list(HIDDEN_ACTS)}")
        if self.problem_type not in PROBLEM_TYPES:
            fail("problem_type", f"one of {list(PROBLEM_TYPES)}")
        for field in ("hidden_dropout", "attention_dropout", "activation_dropout"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                fail(field, "a probability in [0, 1)")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            fail("layer_norm_eps", "a positive number")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range < 0:
            fail("initializer_range", "a number >= 0")
        if self.initializer_std is not None and (
            not isinstance(self.initializer_std, (int, float)) or self.initializer_std <= 0
        ):
            fail("initializer_std", "null or a positive number")
        if self.d_model % 2:
            fail("d_model", "an even number (sinusoid position encodings split it into sin and cos halves)")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            fail("pad_token_id", f"null or an id in [0, {self.vocab_size})")

    # -------------------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for name in (*_FUNNEL_DEFAULTS, *_GENERIC_DEFAULTS):
            data[name] = copy.deepcopy(getattr(self, name))
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        data["label2id"] = dict(self.label2id)
        data["model_type"] = self.model_type
        return dict(sorted(data.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FunnelConfig":
        model_type = data.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise InputError(f"config model_type is {model_type!r}, expected {cls.model_type!r}")
        return cls(**copy.deepcopy(data))

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "FunnelConfig":
        """A config file in any layout users hold: transformers' / ours, PaddleNLP's config.json, or the legacy
        model_config.json (nested init_args); `config_layouts` maps them onto the reference's names."""
        path = Path(path)
        data = read_config_dict(path)
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:  # a value of the wrong kind in the file
            raise InputError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, revision: str | None = None, **overrides: Any) -> "FunnelConfig":
        """Read a model directory's config (`config.json`, else PaddleNLP's legacy `model_config.json`) or the file
        itself, a hub repo's config (`org/name` at `revision`: the HuggingFace cache, else downloaded; see `hub`),
        or build a named preset (the built-in table, offline: the released configs)."""
        path_str = str(path)
        if path_str in preset_names() and not Path(path_str).exists():
            return cls.from_preset(path_str, **overrides)
        file = resolve_pretrained(path, revision=revision, parts=(CONFIG,))
        if file.is_dir():
            file = require_config_file(file)
        config = cls.from_json_file(file)
        config.update(overrides)
        return config

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_FILE
        atomic_write_text(target, self.to_json_string())
        return target

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "FunnelConfig":
        """One of the ten released architectures, e.g. "funnel-transformer/xlarge" (the prefix is optional)."""
        key = preset_key(name)
        if key is None:
            raise InputError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
        return cls(**{**_load_presets()[key], **overrides})

    def update(self, values: dict[str, Any]) -> None:
        data = self.to_dict()
        data.update(values)
        if "num_labels" in values and "id2label" not in values:
            data.pop("id2label", None)
            data.pop("label2id", None)
        fresh = type(self).from_dict(data)
        self.__dict__.update(fresh.__dict__)

    def copy(self) -> "FunnelConfig":
        return type(self).from_dict(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunnelConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"FunnelConfig {self.to_json_string()}"


def _load_presets() -> dict[str, dict[str, Any]]:
    text = resources.files("paddlefunnel").joinpath("presets.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset_names() -> list[str]:
    return list(_load_presets())


def preset_key(name: str) -> str | None:
    """The preset table's key for `name` ("funnel-transformer/small", or "small": the prefix is optional), else
    None."""
    presets = _load_presets()
    return next((key for key in (name, f"funnel-transformer/{name}") if key in presets), None)
