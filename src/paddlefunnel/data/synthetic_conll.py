"""Built-in synthetic named-entity data in the CoNLL-2003 layout (no downloads), for the demo and tests.

The sentences come from the invented world of `data.synthetic` (its countries, capitals and languages) plus
invented people and organisations:
- LOC: countries and capitals ("Port Ives" is two words); MISC: languages; PER: first + last name, or a first
  name alone; ORG: "Bank of <country>", "<country> Times", "<last name> Group".
- Context decides the type, so a tagger cannot just memorise words: a country inside "Bank of Avaria" is ORG,
  not LOC; a last name such as "Crane" is PER after a first name, ORG in "Crane Group", and O where it is the
  national animal ("the national animal of Elvana is crane").

Files hold four columns like the real CoNLL-2003 (token, part of speech, chunk, entity), with `-DOCSTART-`
lines between documents and a blank line after each sentence. The entity (and chunk) tags are IOB1, like the
original, or IOB2 (`scheme="IOB2"`). The same seed gives byte-identical files.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError, OutputExistsError
from ..io_utils import atomic_directory
from .synthetic import COUNTRIES, RELATIONS, SYNTHETIC_MARKER, world

SPLITS = ("train", "dev", "test")
FILE_NAMES = {split: f"{split}.txt" for split in SPLITS}
SCHEMES = ("IOB1", "IOB2")
FIRST_NAMES = ("mira", "tobin", "alva", "corin", "edda", "ivo", "juna", "kest", "lorca", "nils", "orla", "rhea",
               "sten", "ulla", "vero", "wend")
# Half of the last names are also national animals of the world: context tells a person from an animal.
LAST_NAMES = ("heron", "crane", "lynx", "otter", "badger", "marten", "dorsey", "falk", "grell", "haskin",
              "morrow", "quill", "renner", "tasker")
ANIMALS = RELATIONS["animal"][1]

# Each template is a sentence of parts: a literal word, or a slot name (upper case) that `_fill` replaces with
# words and their entity type.
TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("PERSON", "visited", "CAPITAL", ",", "the", "capital", "of", "COUNTRY", "."),
    ("PERSON", "speaks", "LANGUAGE", "and", "lives", "in", "COUNTRY", "."),
    ("the", "ORG", "opened", "an", "office", "in", "CAPITAL", "."),
    ("the", "national", "animal", "of", "COUNTRY", "is", "ANIMAL", "."),
    ("PERSON", "works", "for", "the", "ORG", "in", "CAPITAL", "."),
    ("people", "in", "COUNTRY", "speak", "LANGUAGE", "."),
    ("PERSON", "left", "COUNTRY", "for", "COUNTRY", "."),
    ("the", "ORG", "hired", "PERSON", "last", "year", "."),
    ("PERSON", "met", "PERSON", "in", "CAPITAL", "."),
    ("one", "ANIMAL", "was", "seen", "near", "CAPITAL", "."),
    ("FIRST", "said", "the", "ORG", "will", "grow", "."),
    ("the", "ANIMAL", "is", "common", "in", "COUNTRY", ",", "says", "PERSON", "."),
)
_POS = {"the": "DT", "an": "DT", "one": "CD", "of": "IN", "in": "IN", "for": "IN", "near": "IN", "and": "CC",
        ",": ",", ".": ".", "is": "VBZ", "was": "VBD", "will": "MD", "speaks": "VBZ", "speak": "VBP", "works": "VBZ",
        "lives": "VBZ", "says": "VBZ", "visited": "VBD", "opened": "VBD", "left": "VBD", "hired": "VBD",
        "met": "VBD", "said": "VBD", "seen": "VBN", "grow": "VB", "last": "JJ", "national": "JJ",
        "common": "JJ"}
_CHUNK = {"DT": "NP", "CD": "NP", "NN": "NP", "NNS": "NP", "NNP": "NP", "JJ": "NP", "IN": "PP", "VBZ": "VP", "VBD": "VP",
          "VBP": "VP", "VBN": "VP", "VB": "VP", "MD": "VP", "CC": None, ",": None, ".": None}

Segment = tuple[tuple[str, ...], str | None]  # (words, entity type or None)


def _title(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(w if w == "of" else w.capitalize() for w in words)


def _organisation(rng: random.Random) -> tuple[str, ...]:
    kind = rng.randrange(3)
    if kind == 0:
        return _title(("bank", "of", rng.choice(COUNTRIES)))
    if kind == 1:
        return _title((rng.choice(COUNTRIES), "times"))
    return _title((rng.choice(LAST_NAMES), "group"))


def _fill(slot: str, rng: random.Random, facts: dict[str, dict[str, str]]) -> Segment:
    """Words and entity type of one slot of a template."""
    if slot == "PERSON":
        return _title((rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))), "PER"
    if slot == "FIRST":
        return _title((rng.choice(FIRST_NAMES),)), "PER"
    if slot == "COUNTRY":
        return _title((rng.choice(COUNTRIES),)), "LOC"
    if slot == "CAPITAL":
        return _title(facts[rng.choice(COUNTRIES)]["capital"].split()), "LOC"
    if slot == "LANGUAGE":
        return _title((facts[rng.choice(COUNTRIES)]["language"],)), "MISC"
    if slot == "ORG":
        return _organisation(rng), "ORG"
    if slot == "ANIMAL":
        return (rng.choice(ANIMALS),), None
    return (slot,), None


def _sentence(rng: random.Random, facts: dict[str, dict[str, str]]) -> list[Segment]:
    segments = [_fill(part, rng, facts) for part in rng.choice(TEMPLATES)]
    first_words, kind = segments[0]
    segments[0] = ((first_words[0].capitalize(), *first_words[1:]), kind)  # sentence case
    return segments


def _tags(segments: Sequence[Segment], scheme: str) -> list[str]:
    """Entity tags: IOB2 opens every entity with B-; IOB1 only one that directly follows an entity of its type."""
    tags: list[str] = []
    previous: str | None = None
    for words, kind in segments:
        for i, _ in enumerate(words):
            if kind is None:
                tags.append("O")
                continue
            opens = i == 0 and (scheme == "IOB2" or previous == kind)
            tags.append(("B-" if opens else "I-") + kind)
        previous = kind
    return tags


def _pos(word: str, kind: str | None) -> str:
    if kind is not None:
        return "NNP"
    return _POS.get(word.lower(), "NNS" if word.endswith("s") and len(word) > 3 else "NN")


def _chunks(pos_tags: Sequence[str], scheme: str) -> list[str]:
    """Phrase chunks from the parts of speech: a run of NP words is one NP; every VP / PP word opens a phrase."""
    chunks: list[str] = []
    previous: str | None = None
    for pos in pos_tags:
        phrase = _CHUNK.get(pos, "NP")
        if phrase is None:
            chunks.append("O")
        else:
            continues = phrase == "NP" and previous == "NP"
            opens = not continues and (scheme == "IOB2" or previous == phrase)
            chunks.append(f"{'B' if opens else 'I'}-{phrase}")
        previous = phrase
    return chunks


def sentence_lines(segments: Sequence[Segment], scheme: str) -> list[str]:
    """The CoNLL lines (token POS chunk NER) of one sentence."""
    words = [(word, kind) for ws, kind in segments for word in ws]
    pos_tags = [_pos(word, kind) for word, kind in words]
    return [f"{word} {pos} {chunk} {tag}" for (word, _), pos, chunk, tag
            in zip(words, pos_tags, _chunks(pos_tags, scheme), _tags(segments, scheme))]


def synthetic_conll_text(n_sentences: int, seed: int = 0, scheme: str = "IOB1",
                         sentences_per_document: int = 8) -> str:
    """One split as CoNLL-2003 text: documents of `sentences_per_document` sentences, each after -DOCSTART-."""
    rng = random.Random(seed)
    facts = world()
    lines: list[str] = []
    for index in range(n_sentences):
        if index % sentences_per_document == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += sentence_lines(_sentence(rng, facts), scheme) + [""]
    return "\n".join(lines) + "\n"  # ends with a blank line: files can be concatenated


def write_synthetic_conll(out_dir: str | os.PathLike, n_train: int = 2000, n_dev: int = 200, n_test: int = 200,
                          seed: int = 0, scheme: str = "IOB1") -> Path:
    """Write `<out_dir>/{train,dev,test}.txt` (atomically, as one directory) and return `out_dir`.

    Refuses to replace a directory it did not write (no SYNTHETIC.txt in it), so real data is safe.
    """
    for name, n in (("n_train", n_train), ("n_dev", n_dev), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"{name}={n!r}: expected a positive integer")
    if scheme not in SCHEMES:
        raise InputError(f"scheme={scheme!r}: expected one of {', '.join(SCHEMES)}")
    target = Path(out_dir)
    if target.exists() and any(target.iterdir()) and not (target / SYNTHETIC_MARKER).is_file():
        raise OutputExistsError(f"{target} exists and was not written by write_synthetic_conll; not replacing it")
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    with atomic_directory(target) as tmp:
        for offset, split in enumerate(SPLITS):
            text = synthetic_conll_text(sizes[split], seed * 3 + offset, scheme)
            (tmp / FILE_NAMES[split]).write_text(text, encoding="utf-8")
        (tmp / SYNTHETIC_MARKER).write_text(
            f"Synthetic CoNLL-2003-layout data from paddlefunnel.data.synthetic_conll (seed {seed}, {scheme}); "
            "not the real CoNLL-2003.\n", encoding="utf-8")
    return target
