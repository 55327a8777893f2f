"""The config files a model directory can hold, and how PaddleNLP's layouts map onto transformers' `config.json`.

Three writers, one `FunnelConfig` (which reads only the transformers-style dict this module returns):

- transformers and paddlefunnel: `config.json` with the reference's field names; read as it is.
- PaddleNLP >= 2.5: `config.json` from its `PretrainedConfig.to_json_file` (paddlenlp/transformers/
  configuration_utils.py). The Funnel fields have the reference's names (paddlenlp/transformers/funnel/
  configuration.py); the differences are bookkeeping: `paddlenlp_version`, `dtype`, `max_position_embeddings`,
  `type_vocab_size` (kept as extra keys), its alias `num_classes` for `num_labels`, and `return_dict`, whose
  meaning (PaddleNLP's default is tuples) belongs to PaddleNLP's API, not to the model, so it is dropped.
  A hand-made or older file may lack `model_type`.
- PaddleNLP <= 2.4 and the earlier Paddle reproduction: `model_config.json`, the constructor's arguments as
  saved by the old `save_pretrained`: `init_class` names the class, `init_args` holds its positional arguments,
  and a task head's first argument is the body's own `{"init_args": [...], "init_class": "FunnelModel"}`
  (the kwargs may also sit beside `init_class` instead of inside `init_args`). Flattening puts every level's
  keyword arguments at the top (an outer class's own arguments, e.g. the head's `num_classes`, win), and the
  outermost `init_class` becomes `architectures`.

Nothing here imports the model code or the checkpoint package: `config.py` imports this, and `checkpoint/`
imports `config.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import InputError, MissingFileError
from .io_utils import read_json_object
from .registry import ARCHITECTURES, CONFIG_FILE, CONFIG_FILES, LEGACY_CONFIG_FILE

PADDLENLP_VERSION_KEY = "paddlenlp_version"  # PaddleNLP's PretrainedConfig writes it into every config.json
LEGACY_KEYS = ("init_class", "init_args")  # what marks the <= 2.4 layout, whatever the file is called
# Keys PaddleNLP writes whose meaning is PaddleNLP's API rather than the model: dropped, our defaults apply.
PADDLENLP_API_KEYS = ("return_dict",)
NUM_CLASSES_KEY = "num_classes"  # PaddleNLP's name for num_labels (its PretrainedConfig.attribute_map)


# ------------------------------------------------------------------------------------------ finding
def find_config_file(directory: str | os.PathLike) -> Path | None:
    """The config file of a model directory: `config.json` first (also what PaddleNLP >= 2.5 writes), then the
    legacy `model_config.json`; None when it has neither."""
    directory = Path(directory)
    return next((directory / name for name in CONFIG_FILES if (directory / name).is_file()), None)


def require_config_file(directory: str | os.PathLike, hint: str = "") -> Path:
    """`find_config_file`, or a MissingFileError naming the directory and every file name looked for."""
    found = find_config_file(directory)
    if found is None:
        raise MissingFileError(f"{directory}: no {' or '.join(CONFIG_FILES)} (the model's config){hint}")
    return found


def written_by_paddlenlp(directory: str | os.PathLike) -> bool:
    """Whether a directory's config comes from PaddleNLP (or the earlier reproduction): a legacy config file, or
    a config.json with PaddleNLP's version stamp. Tells which layout an ambiguous weights file is in."""
    directory = Path(directory)
    if (directory / LEGACY_CONFIG_FILE).is_file() and not (directory / CONFIG_FILE).is_file():
        return True
    config_file = directory / CONFIG_FILE
    if not config_file.is_file():
        return False
    try:
        data = read_json_object(config_file, "config file")
    except InputError:
        return False  # a broken config is reported when the config itself is read
    return PADDLENLP_VERSION_KEY in data or any(key in data for key in LEGACY_KEYS)


# ------------------------------------------------------------------------------------------ reading
def read_config_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The transformers-style dict of any config file above (the layout is told by the content, not the name)."""
    path = Path(path)
    data = read_json_object(path, "config file")
    if any(key in data for key in LEGACY_KEYS):
        data = flatten_legacy_config(data, path)
    elif PADDLENLP_VERSION_KEY not in data and NUM_CLASSES_KEY not in data:
        _check_architectures(data, path)
        return data  # transformers' or ours: as it is
    return _from_paddlenlp(data, path)


def flatten_legacy_config(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """PaddleNLP <= 2.4's nested `init_args` / `init_class` as one flat dict with `architectures`."""
    flat: dict[str, Any] = {}
    classes: list[str] = []
    _collect_arguments(data, "", path, flat, classes)
    if classes:
        flat["architectures"] = [classes[0]]
    return flat


def _collect_arguments(node: dict[str, Any], where: str, path: Path, flat: dict[str, Any],
                       classes: list[str]) -> None:
    """Copy `node`'s keyword arguments into `flat` (keys already there, from an outer class, win), then those
    of each object in its `init_args`. `where` names the level in messages, e.g. "init_args[0].". """
    init_class = node.get("init_class")
    if init_class is not None:
        if init_class not in ARCHITECTURES:
            raise InputError(
                f"{path}: {where}init_class is {init_class!r}, expected a Funnel-Transformer class "
                f"({', '.join(ARCHITECTURES)}); this file describes another model"
            )
        classes.append(init_class)
    for key, value in node.items():
        if key not in LEGACY_KEYS:
            flat.setdefault(key, value)
    args = node.get("init_args", [])
    if isinstance(args, dict):  # one keyword-argument object written without its list
        args = [args]
    if not isinstance(args, list):
        raise InputError(f"{path}: {where}init_args is {type(args).__name__} {args!r}, expected a list of "
                         "keyword-argument objects")
    for index, arg in enumerate(args):
        if not isinstance(arg, dict):
            raise InputError(f"{path}: {where}init_args[{index}] is {arg!r}, expected an object of keyword "
                             "arguments (positional values cannot be matched to config fields)")
        _collect_arguments(arg, f"{where}init_args[{index}].", path, flat, classes)


def _from_paddlenlp(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """PaddleNLP's names and API keys mapped onto transformers' (see the module docstring)."""
    data = {key: value for key, value in data.items() if key not in PADDLENLP_API_KEYS}
    if NUM_CLASSES_KEY in data:
        num_classes = data.pop(NUM_CLASSES_KEY)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InputError(f"{path}: {NUM_CLASSES_KEY} is {num_classes!r}, expected a positive integer")
        if "num_labels" not in data and "id2label" not in data and "label2id" not in data:
            data["num_labels"] = num_classes
    _check_architectures(data, path)
    return data


def _check_architectures(data: dict[str, Any], path: Path) -> None:
    """Without `model_type`, `architectures` is the only sign of what the file describes: a list naming no
    Funnel class is another model (transformers' and our files always carry model_type, checked elsewhere)."""
    if "model_type" in data:
        return
    names = data.get("architectures")
    if isinstance(names, list) and names and not any(str(name).startswith("Funnel") for name in names):
        raise InputError(f"{path}: architectures is {names!r} and there is no model_type; expected a "
                         f"Funnel-Transformer class ({', '.join(ARCHITECTURES)})")
