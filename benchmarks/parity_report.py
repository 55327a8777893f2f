"""Measure parity with transformers for every option and head; prints the README's markdown table.

    .venv/bin/python benchmarks/parity_report.py
"""

import sys
from pathlib import Path

from paddlefunnel.parity import format_table, run_case

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the parity grid is test data
from model_utils import ALL_HEADS, HEAD_LABELS, PARITY_OPTIONS, TINY_CONFIG  # noqa: E402


def main() -> None:
    rows = []
    for head in ALL_HEADS:
        rows.append((f"{head} (default options)", run_case(head, {**TINY_CONFIG, **HEAD_LABELS.get(head, {})})))
    for option, overrides in PARITY_OPTIONS.items():
        if option == "default":
            continue
        for body in ("FunnelModel", "FunnelBaseModel"):
            rows.append((f"{body}, {option}", run_case(body, {**TINY_CONFIG, **overrides})))
    for label, extra in (("regression", {"num_labels": 1}),
                         ("multi-label", {"num_labels": 4, "problem_type": "multi_label_classification"})):
        rows.append((f"FunnelForSequenceClassification, {label}",
                     run_case("FunnelForSequenceClassification", {**TINY_CONFIG, **extra})))
    print(format_table(rows))
    worst_f = max(r.max_forward for _, r in rows)
    worst_b = max(r.max_backward for _, r in rows)
    print(f"\n{len(rows)} cases; worst forward {worst_f:.1e}, worst backward {worst_b:.1e}")


if __name__ == "__main__":
    main()
