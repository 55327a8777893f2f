"""Named-entity scores: entity-level precision / recall / F1 (overall and per type) with seqeval, token accuracy.

The tagging scheme decides how tag sequences become entities, so it is detected from the gold tags (or given):
- IOBES: some tag starts with E- or S-.
- IOB1 (the original CoNLL-2003): an entity starts with I-; B- only separates two adjacent entities of one type.
  Seen as an I- tag at a sentence start, after O, or after another type.
- IOB2: every entity starts with B-.
IOB1 is scored like the official conlleval script (seqeval's default mode); IOB2 and IOBES in seqeval's strict
mode, where a predicted entity must begin and end as the scheme says (an I- after O is not an entity).
seqeval (which pulls scikit-learn) is imported only when scores are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError

SCHEMES = ("IOB1", "IOB2", "IOBES")
_PREFIXES = {"B", "I", "E", "S"}

TagSequences = Sequence[Sequence[str]]


def split_tag(tag: str) -> tuple[str, str | None]:
    """("O", None) for the outside tag, else (prefix, entity type): "B-PER" -> ("B", "PER")."""
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in _PREFIXES or not kind:
        raise InputError(f"tag {tag!r} is not O or PREFIX-TYPE with a prefix in B, I, E, S (e.g. B-PER)")
    return prefix, kind


def detect_scheme(tag_sequences: TagSequences) -> str:
    """IOB1, IOB2 or IOBES, from the tags alone (see the module docstring); IOB2 when nothing tells them apart."""
    iob1 = False
    for tags in tag_sequences:
        previous: tuple[str, str | None] = ("O", None)
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "IOBES"
            if prefix == "I" and (previous[0] == "O" or previous[1] != kind):
                iob1 = True
            previous = (prefix, kind)
    return "IOB1" if iob1 else "IOB2"


def scheme_name(scheme: str) -> str:
    """`scheme` checked and upper-cased."""
    if not isinstance(scheme, str) or scheme.upper() not in SCHEMES:
        raise InputError(f"tagging scheme {scheme!r} is unknown; expected one of {', '.join(SCHEMES)}")
    return scheme.upper()


def check_scheme(scheme: str | None, tag_sequences: TagSequences) -> str:
    """The scheme to use: `scheme` when given, else the one the tags show. A given scheme must fit the tags
    (IOB2 tags also read as IOB1); otherwise their entities would silently vanish in strict scoring."""
    detected = detect_scheme(tag_sequences)
    if scheme is None:
        return detected
    upper = scheme_name(scheme)
    if upper != detected and not (upper == "IOB1" and detected == "IOB2"):
        raise InputError(f"tagging scheme {upper} does not fit the training tags, which are {detected} (e.g. an "
                         "entity that starts with I-, or E-/S- tags); omit --scheme to use the detected one")
    return upper


def _seqeval_options(scheme: str) -> dict[str, Any]:
    from seqeval import scheme as schemes  # optional dependency: pulls scikit-learn

    if scheme == "IOB1":
        return {"mode": None}  # conlleval's rules, which read IOB1 (and tolerate IOB2)
    return {"mode": "strict", "scheme": {"IOB2": schemes.IOB2, "IOBES": schemes.IOBES}[scheme]}


def _check_lengths(gold: TagSequences, predicted: TagSequences) -> None:
    if len(gold) != len(predicted):
        raise InputError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    for index, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise InputError(f"sentence {index}: {len(g)} gold tags but {len(p)} predicted ones")


def ner_metrics(gold: TagSequences, predicted: TagSequences, scheme: str | None = None) -> dict[str, Any]:
    """{"precision", "recall", "f1", "accuracy" (token level), "scheme", "entities" (gold count),
    "per_type": {type: {"precision", "recall", "f1", "support"}}}; scores are percentages like conlleval's."""
    from seqeval.metrics import accuracy_score, classification_report

    _check_lengths(gold, predicted)
    scheme = detect_scheme(gold) if scheme is None else scheme_name(scheme)  # a model's scheme, even where a
    # file's tags alone would look like another (e.g. IOB1 data without an entity that starts with I-)
    gold_lists, predicted_lists = [list(t) for t in gold], [list(t) for t in predicted]
    report = classification_report(gold_lists, predicted_lists, output_dict=True, zero_division=0,
                                   **_seqeval_options(scheme))
    overall = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {kind: _scores(values) for kind, values in report.items() if not kind.endswith(" avg")}
    return {"precision": 100 * float(overall["precision"]), "recall": 100 * float(overall["recall"]),
            "f1": 100 * float(overall["f1-score"]),
            "accuracy": 100 * float(accuracy_score(gold_lists, predicted_lists)),
            "scheme": scheme, "entities": int(overall["support"]), "per_type": per_type}


def _scores(values: dict[str, Any]) -> dict[str, Any]:
    return {"precision": 100 * float(values["precision"]), "recall": 100 * float(values["recall"]),
            "f1": 100 * float(values["f1-score"]), "support": int(values["support"])}


def flat_ner_metrics(gold: TagSequences, predicted: TagSequences, scheme: str | None = None) -> dict[str, float]:
    """The overall numbers of `ner_metrics` alone (what a training log records at each evaluation)."""
    metrics = ner_metrics(gold, predicted, scheme)
    return {key: metrics[key] for key in ("precision", "recall", "f1", "accuracy")}


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of every entity in one tag sequence, read leniently (as conlleval reads
    predictions: an I- tag after O starts an entity), so that every tagged word belongs to some entity."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, int(start), int(end)) for kind, start, end in get_entities(list(tags))]
