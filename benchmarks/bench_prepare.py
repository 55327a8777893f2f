"""Throughput and peak memory of `paddlefunnel pretrain prepare`, on a large corpus and on one 10x smaller.

The corpus comes from the built-in generator (`write_builtin_corpus`: rounds of ~4 MB, the pydoc prose once per
round and fresh draws of the invented world's documents), so it needs no download. The vocabulary is trained
once on the default built-in corpus. Each preparation runs as its own child process; its peak resident memory is
that child's `ru_maxrss` (from `os.wait4`), so the two sizes are measured apart. Memory that does not grow with
the corpus (streaming) shows as about the same peak for both sizes.

    .venv/bin/python benchmarks/bench_prepare.py --size-mb 100

prints a Markdown table (tokens/s, MB/s, peak RSS) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paddlefunnel.pretraining.builtin import write_builtin_corpus
from paddlefunnel.runtime import users_omp_threads
from paddlefunnel.tokenizer import FunnelTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100.0, help="size of the large corpus (default: 100)")
    parser.add_argument("--factor", type=int, default=10, help="the small corpus is this many times smaller")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000,
                        help="asked of WordPiece training; the built-in corpus supports fewer (the table says)")
    parser.add_argument("--workdir", help="keep the corpora and outputs here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_prepare.") as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer_dir = _tokenizer(work, args.vocab_size)
        vocabulary = len(FunnelTokenizer.from_pretrained(tokenizer_dir))
        rows = []
        for size_mb in (args.size_mb / args.factor, args.size_mb):
            corpus = work / f"corpus-{size_mb:g}MB.txt"
            if not corpus.exists():
                started = time.perf_counter()
                write_builtin_corpus(corpus, size_bytes=int(size_mb * 2**20))
                print(f"wrote {corpus} ({corpus.stat().st_size / 2**20:.1f} MiB) in "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            rows.append(_measure(corpus, tokenizer_dir, work / f"data-{size_mb:g}MB", args.max_seq_length))
    _print_table(rows, args, vocabulary)


def _tokenizer(work: Path, vocab_size: int) -> Path:
    directory = work / f"tokenizer-{vocab_size}"
    if not (directory / "tokenizer.json").is_file():
        corpus = write_builtin_corpus(work / "builtin-default.txt")
        FunnelTokenizer.train(corpus, vocab_size, show_progress=False).save_pretrained(directory)
    return directory


def _measure(corpus: Path, tokenizer_dir: Path, out: Path, max_seq_length: int) -> dict:
    command = [sys.executable, "-m", "paddlefunnel", "pretrain", "prepare", "--corpus", str(corpus),
               "--tokenizer", str(tokenizer_dir), "--max-seq-length", str(max_seq_length), "--out", str(out),
               "--overwrite", "--quiet"]
    load = os.getloadavg()[0]  # the machine is shared: wall time depends on it, CPU time much less
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    stdout, stderr = child.stdout.read(), child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"prepare failed ({command}):\n{stderr}")
    summary = json.loads(stdout)
    return {"corpus_mib": corpus.stat().st_size / 2**20, "tokens": summary["text_tokens"],
            "examples": summary["examples"]["train"] + summary["examples"]["eval"], "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024, "load": load}


def _print_table(rows: list[dict], args: argparse.Namespace, vocabulary: int) -> None:
    print(f"max_seq_length {args.max_seq_length}, vocabulary {vocabulary} tokens, "
          f"OMP_NUM_THREADS={users_omp_threads() or 'unset'}, {os.cpu_count()} CPUs\n")
    print("| corpus | text tokens | examples | wall s | CPU s (child) | tokens/s (wall) | tokens per CPU s | MB/s "
          "(wall) | peak RSS (child) | load average at start |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['corpus_mib']:.1f} MiB | {row['tokens']:,} | {row['examples']:,} | {row['seconds']:.1f} | "
              f"{row['cpu_seconds']:.1f} | {row['tokens'] / row['seconds']:,.0f} | "
              f"{row['tokens'] / row['cpu_seconds']:,.0f} | {row['corpus_mib'] / row['seconds']:.2f} | "
              f"{row['peak_rss_mib']:.0f} MiB | {row['load']:.1f} |")


if __name__ == "__main__":
    main()
