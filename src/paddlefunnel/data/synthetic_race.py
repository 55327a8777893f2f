"""Built-in synthetic RACE-format data (no downloads), drawn from the invented world of `data/synthetic.py`.

Each "article" states several facts about one country; questions ask about those facts, each with four options:
the right value and three other values of the same relation, in a random order (answers "A".."D" are balanced
by construction). Some questions are cloze ("the capital of avaria is _ ."), as in RACE, where the option fills
the blank. Two subsets, like RACE's:

- middle: short articles (2-3 facts about the country), nothing to confuse;
- high: longer articles (4-6 facts) plus facts about other countries, and one wrong option of a question is the
  other country's value of that relation when the article states it, so matching a value alone is not enough:
  the model must also match the country.

`write_synthetic_race` writes RACE's official layout, `<out>/{train,dev,test}/{middle,high}/<n>.txt`, one JSON
object per file (`id`, `article`, `questions`, `options`, `answers`), atomically; the same seed gives
byte-identical files.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError
from ..io_utils import atomic_directory
from .multiple_choice import RACE_SUBSETS, choice_letter
from .synthetic import (COUNTRIES, FACT_TEMPLATES, QUESTION_TEMPLATES, RELATIONS, SYNTHETIC_MARKER, world)

CLOZE_TEMPLATE = "the {rel} of {country} is _ ."
NUM_OPTIONS = 4
# subset -> (facts about the article's country: min, max; facts about other countries)
_ARTICLE_SHAPES = {"middle": ((2, 3), 0), "high": ((4, 6), 2)}
_CLOZE_SHARE = 0.3


def _sentence(facts: dict[str, dict[str, str]], country: str, relation: str, rng: random.Random) -> str:
    template = FACT_TEMPLATES[rng.randrange(len(FACT_TEMPLATES))]
    return template.format(rel=RELATIONS[relation][0], country=country, value=facts[country][relation])


def _question_text(country: str, relation: str, rng: random.Random) -> str:
    if rng.random() < _CLOZE_SHARE:
        return CLOZE_TEMPLATE.format(rel=RELATIONS[relation][0], country=country)
    template = QUESTION_TEMPLATES[rng.randrange(len(QUESTION_TEMPLATES))]
    return template.format(rel=RELATIONS[relation][0], country=country)


def _options(right: str, relation: str, confusers: list[str], rng: random.Random) -> tuple[list[str], str]:
    """Four options (the right value, the confusers first among the wrong ones, then random values of the same
    relation) in a random order, and the right option's letter."""
    wrong = [value for value in dict.fromkeys(confusers) if value != right][: NUM_OPTIONS - 1]
    others = [value for value in RELATIONS[relation][1] if value != right and value not in wrong]
    wrong += rng.sample(others, NUM_OPTIONS - 1 - len(wrong))
    options = [right, *wrong]
    rng.shuffle(options)
    return options, choice_letter(options.index(right))


def synthetic_race_document(rng: random.Random, subset: str, doc_id: str) -> dict[str, Any]:
    """One RACE-format article with its questions (see the module docstring)."""
    if subset not in _ARTICLE_SHAPES:
        raise InputError(f"subset {subset!r}: expected one of {', '.join(_ARTICLE_SHAPES)}")
    facts = world()
    (low, high), n_other = _ARTICLE_SHAPES[subset]
    country = rng.choice(COUNTRIES)
    relations = rng.sample(list(RELATIONS), rng.randint(low, high))
    others = rng.sample([c for c in COUNTRIES if c != country], n_other)
    stated = [(country, r) for r in relations] + [(other, rng.choice(relations)) for other in others]
    rng.shuffle(stated)
    article = " ".join(_sentence(facts, who, relation, rng) for who, relation in stated)
    questions, options, answers = [], [], []
    for relation in rng.sample(relations, min(len(relations), 3)):
        confusers = [facts[who][r] for who, r in stated if r == relation and who != country]
        choice_list, answer = _options(facts[country][relation], relation, confusers, rng)
        questions.append(_question_text(country, relation, rng))
        options.append(choice_list)
        answers.append(answer)
    return {"answers": answers, "options": options, "questions": questions, "article": article, "id": doc_id}


def _write_split(folder: Path, split: str, n_articles: int, seed: int) -> None:
    for subset in RACE_SUBSETS:
        rng = random.Random(f"{seed}/{split}/{subset}")  # str seeds hash deterministically (not PYTHONHASHSEED)
        directory = folder / split / subset
        directory.mkdir(parents=True)
        for n in range(n_articles):
            name = f"{n + 1}.txt"
            document = synthetic_race_document(rng, subset, f"{subset}{name}")
            (directory / name).write_text(json.dumps(document) + "\n", encoding="utf-8")


def write_synthetic_race(out_dir: str | os.PathLike, n_train: int = 400, n_dev: int = 50, n_test: int = 50,
                         seed: int = 0) -> Path:
    """Write `n_*` articles per subset and split under `out_dir` (RACE's layout; up to three questions per
    article) and return `out_dir`. Refuses to replace a directory it did not write (no SYNTHETIC.txt in it)."""
    for name, n in (("n_train", n_train), ("n_dev", n_dev), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"{name}={n!r}: expected a positive integer")
    target = Path(out_dir)
    if target.exists() and not (target / SYNTHETIC_MARKER).is_file():
        raise OutputExistsError(f"{target} exists and was not written by write_synthetic_race; not replacing it")
    with atomic_directory(target) as tmp:
        for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
            _write_split(tmp, split, n, seed)
        (tmp / SYNTHETIC_MARKER).write_text(
            f"Synthetic RACE-layout data from paddlefunnel.data.synthetic_race (seed {seed}); not the real RACE.\n",
            encoding="utf-8")
    return target
