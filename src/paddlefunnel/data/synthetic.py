"""Built-in synthetic data sets (no downloads) for learnability tests and the demo.

Both are drawn from one small fixed "world": twelve invented countries, each with six facts (capital, language,
currency, longest river, national animal, flag color). The vocabulary is about a hundred lower-case words and
every sentence is short, so a tiny model learns quickly. `seed` only chooses which examples are drawn; the same
seed gives byte-identical files.

- `write_synthetic_glue`: a QNLI-like sentence-pair task in QNLI's exact GLUE layout (`index, question, sentence,
  label` with labels entailment / not_entailment; test without label), written to `<out_dir>/QNLI/` so that
  `read_glue(out_dir, "QNLI", split)` reads it. The question asks for one fact; the label is entailment iff the
  sentence states that fact (same country and same relation). Negatives change either the country or the
  relation, so every single word is equally frequent in both classes: the model must compare the two sentences.
- `write_synthetic_squad`: SQuAD-format paragraphs listing facts about one country plus one fact about another,
  with questions about the first country; v2.0 adds unanswerable questions (facts the paragraph does not give,
  with the other country's fact as the plausible answer when it matches).
- `demo_corpus`: every sentence and question form of the world, for training a vocabulary.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError
from ..io_utils import atomic_directory, atomic_write_text

SYNTHETIC_GLUE_TASK = "QNLI"
SYNTHETIC_MARKER = "SYNTHETIC.txt"
_WORLD_SEED = 20200609  # fixed: the facts never change, only the sampling of examples does

COUNTRIES = ("avaria", "borland", "cressia", "dunmore", "elvana", "fennick",
             "galtia", "horvath", "istria", "jorvik", "kaldor", "lumeria")
# relation -> (how sentences name it, the values it can take)
RELATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "capital": ("capital", ("lorn", "port ives", "tamsk", "vell", "oradin", "kesh", "new amble", "druma")),
    "language": ("language", ("kelish", "morvic", "tessan", "ulvar", "prennic", "dovish", "alsic", "rhunic")),
    "currency": ("currency", ("crown", "mark", "dinar", "talon", "shell", "ducat", "guilder", "ring")),
    "river": ("longest river", ("amber", "silt", "greywater", "ost", "pell", "varn", "lune", "brisk")),
    "animal": ("national animal", ("otter", "heron", "lynx", "elk", "badger", "crane", "ibex", "marten")),
    "color": ("flag color", ("red", "green", "blue", "gold", "white", "black", "violet", "orange")),
}
QUESTION_TEMPLATES = ("what is the {rel} of {country} ?", "which is the {rel} of {country} ?")
FACT_TEMPLATES = ("the {rel} of {country} is {value} .", "{value} is the {rel} of {country} .",
                  "in {country} , the {rel} is {value} .")


def world() -> dict[str, dict[str, str]]:
    """country -> relation -> value, the same on every call."""
    rng = random.Random(_WORLD_SEED)
    return {country: {rel: rng.choice(values) for rel, (_, values) in RELATIONS.items()} for country in COUNTRIES}


def _question(country: str, relation: str, template: int) -> str:
    return QUESTION_TEMPLATES[template].format(rel=RELATIONS[relation][0], country=country)


def _fact(facts: dict[str, dict[str, str]], country: str, relation: str, template: int) -> str:
    return _fact_with_offset(facts, country, relation, template)[0]


def _fact_with_offset(facts: dict[str, dict[str, str]], country: str, relation: str,
                      template: int) -> tuple[str, int]:
    """The sentence and the character offset of the value in it (from the template, not by searching)."""
    before, after = FACT_TEMPLATES[template].split("{value}")
    prefix = before.format(rel=RELATIONS[relation][0], country=country)
    suffix = after.format(rel=RELATIONS[relation][0], country=country)
    return prefix + facts[country][relation] + suffix, len(prefix)


def demo_corpus() -> list[str]:
    """Every fact and question the generators can produce: a small corpus for training a vocabulary."""
    facts = world()
    sentences = [_fact(facts, c, r, t) for c in COUNTRIES for r in RELATIONS for t in range(len(FACT_TEMPLATES))]
    sentences += [_question(c, r, t) for c in COUNTRIES for r in RELATIONS for t in range(len(QUESTION_TEMPLATES))]
    return sentences


# --------------------------------------------------------------------------------------- sentence pairs
def _pair(rng: random.Random, facts: dict[str, dict[str, str]], positive: bool) -> tuple[str, str]:
    country, relation = rng.choice(COUNTRIES), rng.choice(list(RELATIONS))
    s_country, s_relation = country, relation
    if not positive:
        if rng.random() < 0.5:
            s_country = rng.choice([c for c in COUNTRIES if c != country])
        else:
            s_relation = rng.choice([r for r in RELATIONS if r != relation])
    question = _question(country, relation, rng.randrange(len(QUESTION_TEMPLATES)))
    return question, _fact(facts, s_country, s_relation, rng.randrange(len(FACT_TEMPLATES)))


def _pair_split(n: int, seed: int, with_label: bool) -> str:
    """One split as QNLI TSV text; exactly half the rows (rounded down) are entailment."""
    rng = random.Random(seed)
    facts = world()
    labels = [i % 2 == 0 for i in range(n)]
    rng.shuffle(labels)
    lines = ["index\tquestion\tsentence\tlabel" if with_label else "index\tquestion\tsentence"]
    for index, positive in enumerate(labels):
        question, sentence = _pair(rng, facts, positive)
        label = "entailment" if positive else "not_entailment"
        lines.append(f"{index}\t{question}\t{sentence}" + (f"\t{label}" if with_label else ""))
    return "\n".join(lines) + "\n"


def write_synthetic_glue(out_dir: str | os.PathLike, n_train: int = 4000, n_dev: int = 400, n_test: int = 400,
                         seed: int = 0) -> Path:
    """Write `<out_dir>/QNLI/{train,dev,test}.tsv` (see the module docstring) and return that directory.

    Refuses to replace a QNLI directory it did not write (no SYNTHETIC.txt in it), so real data is safe.
    """
    for name, n in (("n_train", n_train), ("n_dev", n_dev), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"{name}={n!r}: expected a positive integer")
    target = Path(out_dir) / SYNTHETIC_GLUE_TASK
    if target.exists() and not (target / SYNTHETIC_MARKER).is_file():
        raise OutputExistsError(f"{target} exists and was not written by write_synthetic_glue; not replacing it")
    with atomic_directory(target) as tmp:
        (tmp / "train.tsv").write_text(_pair_split(n_train, seed * 3, True), encoding="utf-8")
        (tmp / "dev.tsv").write_text(_pair_split(n_dev, seed * 3 + 1, True), encoding="utf-8")
        (tmp / "test.tsv").write_text(_pair_split(n_test, seed * 3 + 2, False), encoding="utf-8")
        (tmp / SYNTHETIC_MARKER).write_text(
            f"Synthetic QNLI-layout data from paddlefunnel.data.synthetic (seed {seed}); not the real QNLI.\n",
            encoding="utf-8")
    return target


# --------------------------------------------------------------------------------------------- SQuAD
def _paragraph(rng: random.Random, facts: dict[str, dict[str, str]], country: str, article: int,
               version_2: bool) -> dict[str, Any]:
    relations = list(RELATIONS)
    rng.shuffle(relations)
    stated = relations[: rng.randint(3, 5)]
    unstated = [r for r in RELATIONS if r not in stated]
    other = rng.choice([c for c in COUNTRIES if c != country])
    distractor_relation = rng.choice(unstated)
    sentences = [(country, r) for r in stated]
    sentences.insert(rng.randint(0, len(sentences)), (other, distractor_relation))
    context, starts = "", {}
    for who, relation in sentences:
        sentence, offset = _fact_with_offset(facts, who, relation, rng.randrange(len(FACT_TEMPLATES)))
        context += " " if context else ""
        starts[who, relation] = len(context) + offset
        context += sentence
    qas = []
    for relation in stated:
        answer = {"text": facts[country][relation], "answer_start": starts[country, relation]}
        qas.append({"question": _question(country, relation, rng.randrange(len(QUESTION_TEMPLATES))),
                    "answers": [answer], **({"is_impossible": False} if version_2 else {})})
    if version_2:
        for relation in unstated:
            plausible = ([{"text": facts[other][relation], "answer_start": starts[other, relation]}]
                         if relation == distractor_relation else [])
            qas.append({"question": _question(country, relation, rng.randrange(len(QUESTION_TEMPLATES))),
                        "answers": [], "plausible_answers": plausible, "is_impossible": True})
    rng.shuffle(qas)
    for j, qa in enumerate(qas):
        qa["id"] = f"syn{article:05d}q{j}"
    return {"context": context, "qas": qas}


def synthetic_squad(n_articles: int, seed: int = 0, version_2: bool = True) -> dict[str, Any]:
    """The SQuAD JSON document that `write_synthetic_squad` writes."""
    if isinstance(n_articles, bool) or not isinstance(n_articles, int) or n_articles < 1:
        raise InputError(f"n_articles={n_articles!r}: expected a positive integer")
    rng = random.Random(seed)
    facts = world()
    data = []
    for article in range(n_articles):
        country = rng.choice(COUNTRIES)
        data.append({"title": country.capitalize(),
                     "paragraphs": [_paragraph(rng, facts, country, article, version_2)]})
    return {"version": "v2.0" if version_2 else "1.1", "data": data}


def write_synthetic_squad(path: str | os.PathLike, n_articles: int = 200, seed: int = 0,
                          version_2: bool = True) -> Path:
    """Write a synthetic SQuAD v2.0 (or v1.1) JSON file, atomically, and return its path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(synthetic_squad(n_articles, seed, version_2), ensure_ascii=False) + "\n")
    return path
