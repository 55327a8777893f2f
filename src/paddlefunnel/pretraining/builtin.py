"""The built-in pretraining corpus: no download, a few MB, the same bytes for the same arguments.

Two kinds of documents, shuffled together:
- the invented world of `data/synthetic.py` (twelve countries, six facts each) told in varied sentences: country
  profiles, comparisons of two countries, short travel stories, and question-and-answer pages (questions in the
  synthetic sets' wording, each followed by the sentence that answers it). Every fact stated is the world's fact
  and every answer the right one, so the text holds no downstream labels (no wrong pairs, no "not entailment"),
  but a model pretrained here has read what the synthetic QNLI/SQuAD sets ask about, in the way they ask it:
  unlabelled in-domain text, as a real pretraining corpus is for real tasks (the question pages were added in
  version 2 for the downstream comparison in benchmarks/RESULTS.md, "Pretraining");
- real English prose that ships with Python (`pydoc_data.topics`, the language reference's help topics): its
  paragraphs of running text, re-split into one sentence per line, without the grammar and code blocks.

The corpus is written in rounds of about `ROUND_BYTES`: each round holds the prose once (a smaller corpus a random
share of its topics, at most `PROSE_SHARE` of the bytes) and fresh draws of the world documents, so a large corpus
(the prepare benchmark's 100 MB) repeats the prose but not the world text, and writing it needs memory for one
round only.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

from pydoc_data.topics import topics as _PYDOC_TOPICS

from ..data.synthetic import COUNTRIES, FACT_TEMPLATES, QUESTION_TEMPLATES, RELATIONS, world
from ..errors import InputError
from ..io_utils import atomic_path, writing

BUILTIN_CORPUS_NAME = "builtin"
BUILTIN_VERSION = 2  # bump when the generated text changes (it is part of a data directory's identity)
DEFAULT_BUILTIN_BYTES = 4 << 20
ROUND_BYTES = 4 << 20
PROSE_SHARE = 0.12  # at most this fraction of a round is prose: all of pydoc's topics fit in a 4 MB round

_MORE_FACT_TEMPLATES = (
    "{country} has {value} as its {rel} .",
    "people in {country} will tell you that the {rel} is {value} .",
    "the {rel} of {country} ? it is {value} .",
)
_PRONOUNS = ("she", "he", "they")
_TRAVELLERS = ("a trader", "a student", "an old sailor", "a painter", "a young doctor", "a family")
_OPENINGS = ("one spring", "last winter", "long ago", "in the autumn", "one summer morning")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fact_sentence(rng: random.Random, facts: dict, country: str, relation: str) -> str:
    template = rng.choice(FACT_TEMPLATES + _MORE_FACT_TEMPLATES)
    return template.format(rel=RELATIONS[relation][0], country=country, value=facts[country][relation])


def _profile(rng: random.Random, facts: dict) -> list[str]:
    country = rng.choice(COUNTRIES)
    relations = rng.sample(list(RELATIONS), k=rng.randint(3, len(RELATIONS)))
    sentences = [f"{country} is one of the twelve countries of the old continent ."]
    sentences += [_fact_sentence(rng, facts, country, relation) for relation in relations]
    if rng.random() < 0.5:
        relation = rng.choice(relations)
        question = rng.choice(QUESTION_TEMPLATES).format(rel=RELATIONS[relation][0], country=country)
        sentences.append(f"if you ask \" {question} \" , the answer is {facts[country][relation]} .")
    return sentences


def _comparison(rng: random.Random, facts: dict) -> list[str]:
    first, second = rng.sample(COUNTRIES, k=2)
    sentences = [f"{first} and {second} are neighbours , but they differ in many ways ."]
    for relation in rng.sample(list(RELATIONS), k=rng.randint(2, 4)):
        name = RELATIONS[relation][0]
        a, b = facts[first][relation], facts[second][relation]
        if a == b:
            sentences.append(f"{first} and {second} have the same {name} , {a} .")
        elif rng.random() < 0.5:
            sentences.append(f"the {name} of {first} is {a} , while the {name} of {second} is {b} .")
        else:
            sentences.append(f"unlike {first} , where the {name} is {a} , {second} has {b} .")
    return sentences


def _story(rng: random.Random, facts: dict) -> list[str]:
    home, away = rng.sample(COUNTRIES, k=2)
    who, pronoun = rng.choice(_TRAVELLERS), rng.choice(_PRONOUNS)
    f, g = facts[home], facts[away]
    sentences = [
        f"{rng.choice(_OPENINGS)} , {who} from {home} travelled to {away} .",
        f"at the border {pronoun} changed every {f['currency']} for the {g['currency']} of {away} .",
        f"in {g['capital']} , the capital , the people spoke {g['language']} , not {f['language']} .",
        f"{pronoun} walked along the {g['river']} and saw {_a(g['animal'])} , the national animal of {away} .",
        f"above the town hall {_a(g['color'])} flag was flying .",
    ]
    middle = sentences[1:4]  # the middle of the journey in any order; it starts and ends the same way
    rng.shuffle(middle)
    sentences[1:4] = middle
    if rng.random() < 0.5:
        sentences.append(f"back home in {f['capital']} , {pronoun} told everyone about the {g['animal']} .")
    return sentences


def _questions(rng: random.Random, facts: dict) -> list[str]:
    """A question-and-answer page: questions about one country (now and then a neighbour), each followed by the
    fact sentence that answers it, in any of the fact templates."""
    country = rng.choice(COUNTRIES)
    sentences = [f"questions and answers about {country} ."]
    for _ in range(rng.randint(2, 5)):
        who = country if rng.random() < 0.8 else rng.choice(COUNTRIES)
        relation = rng.choice(list(RELATIONS))
        sentences.append(rng.choice(QUESTION_TEMPLATES).format(rel=RELATIONS[relation][0], country=who))
        sentences.append(_fact_sentence(rng, facts, who, relation))
    return sentences


_WORLD_DOCUMENTS = (_profile, _comparison, _story, _questions)

_CODE_LINE = re.compile(r"^\s{3,}\S|::=|^[*=\-~^]{3,}\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")


def prose_documents() -> list[list[str]]:
    """One document per pydoc topic: its running-text paragraphs as sentences, one per line."""
    documents = []
    for name in sorted(_PYDOC_TOPICS):
        sentences = []
        for paragraph in _PYDOC_TOPICS[name].split("\n\n"):
            lines = [line for line in paragraph.splitlines() if line.strip()]
            if not lines or any(_CODE_LINE.search(line) for line in lines):
                continue  # grammar, code, headings: not prose
            text = " ".join(line.strip() for line in lines)
            sentences += [s for s in _SENTENCE_END.split(text) if len(s.split()) >= 3]
        if sentences:
            documents.append(sentences)
    return documents


def _size(document: list[str]) -> int:
    """Bytes the document takes in the corpus file (the world and pydoc's prose are ASCII)."""
    return sum(len(sentence) + 1 for sentence in document) + 1


def builtin_documents(size_bytes: int = DEFAULT_BUILTIN_BYTES, seed: int = 0) -> Iterator[list[str]]:
    """The documents of the built-in corpus, round by round (see the module docstring)."""
    facts = world()
    prose = prose_documents()
    written = 0
    round_index = 0
    while written < size_bytes:
        rng = random.Random(f"{seed}:{round_index}")
        round_bytes = min(ROUND_BYTES, size_bytes - written)
        round_docs = _prose_share(prose, int(round_bytes * PROSE_SHARE), rng)
        budget = round_bytes - sum(map(_size, round_docs))
        while budget > 0:
            document = rng.choice(_WORLD_DOCUMENTS)(rng, facts)
            budget -= _size(document)
            round_docs.append(document)
        rng.shuffle(round_docs)
        for document in round_docs:
            written += _size(document)
            yield document
        round_index += 1


def _prose_share(prose: list[list[str]], budget: int, rng: random.Random) -> list[list[str]]:
    """All of the prose when a round has room for it (the default size and up), else topics drawn at random
    until `budget` bytes: small corpora keep the same mix of world text and prose."""
    if sum(map(_size, prose)) <= budget:
        return list(prose)
    chosen = []
    for document in rng.sample(prose, k=len(prose)):
        if _size(document) > budget:
            break
        chosen.append(document)
        budget -= _size(document)
    return chosen


def write_builtin_corpus(path: str | os.PathLike, size_bytes: int = DEFAULT_BUILTIN_BYTES, seed: int = 0) -> Path:
    """Write the built-in corpus (at least `size_bytes` bytes of UTF-8, usually a little more) to `path`
    atomically: one sentence per line, a blank line after each document. Same arguments, same bytes."""
    if not isinstance(size_bytes, int) or size_bytes < 1:
        raise InputError(f"size_bytes must be a positive int, got {size_bytes!r}")
    path = Path(path)
    with atomic_path(path, "built-in corpus") as tmp, writing(path, "built-in corpus"):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for document in builtin_documents(size_bytes, seed):
                handle.write("\n".join(document) + "\n\n")
    return path
