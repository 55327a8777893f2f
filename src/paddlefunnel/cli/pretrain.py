"""`paddlefunnel pretrain`: prepare a corpus for pretraining (`prepare`), then pretrain on it (`run`)."""

from __future__ import annotations

import argparse
import time

from ..errors import InputError
from ..pretraining import prepare_corpus
from ..pretraining.builtin import BUILTIN_CORPUS_NAME, DEFAULT_BUILTIN_BYTES
from ..pretraining.masking import DEFAULT_MASK_PROB
from ..pretraining.models import DEFAULT_DISC_WEIGHT, DEFAULT_GENERATOR_SIZE, ELECTRA, OBJECTIVES
from ..pretraining.prepare import DEFAULT_EVAL_EXAMPLES
from ..pretraining.run import OBJECTIVE_FLAGS, pretrain
from ..tokenizer import FunnelTokenizer
from .options import (add_command, add_model_options, add_overwrite, add_training_options, print_json,
                      training_arguments)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pretrain", help="pretrain a Funnel model from raw text (ELECTRA or MLM)",
                            allow_abbrev=False)
    actions = parser.add_subparsers(dest="pretrain_command", required=True, metavar="ACTION")
    _add_prepare(actions)
    _add_run(actions)


def _add_prepare(actions: argparse._SubParsersAction) -> None:
    p = add_command(actions, "prepare", run_prepare,
                    "tokenise and pack raw text into memory-mapped shards of fixed-length examples")
    p.add_argument("--corpus", nargs="+", required=True, metavar="FILE",
                   help="UTF-8 text files (.txt, or .gz), one sentence per line, a blank line between documents; "
                        f"'{BUILTIN_CORPUS_NAME}' for the built-in corpus (a file of that name: "
                        f"./{BUILTIN_CORPUS_NAME})")
    vocabulary = p.add_mutually_exclusive_group(required=True)
    vocabulary.add_argument("--tokenizer", help="tokenizer directory or hub name")
    vocabulary.add_argument("--train-vocab", type=int, metavar="SIZE",
                            help="train a WordPiece vocabulary of SIZE tokens on the corpus first (saved in "
                                 "OUT/tokenizer/)")
    p.add_argument("--max-seq-length", type=int, default=128, help="tokens per example (default: 128)")
    p.add_argument("--out", required=True, help="data directory to write")
    p.add_argument("--seed", type=int, default=0, help="document shuffling and split points (default: 0)")
    p.add_argument("--eval-examples", default=DEFAULT_EVAL_EXAMPLES, metavar="N|FRACTION",
                   help="held-out examples: the first N, or a fraction in (0, 1) taken as every k-th example "
                        f"(default: {DEFAULT_EVAL_EXAMPLES})")
    p.add_argument("--doc-per-file", action="store_true", help="each file is one document (default: documents "
                                                               "are separated by blank lines)")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip (and count) lines that are not UTF-8")
    p.add_argument("--within-documents", action="store_true",
                   help="no example mixes two documents (each document's last window is padded instead of "
                        "continuing into the next one); default: one continuous stream, as the authors' builder. "
                        "Measured better for sentence-pair fine-tuning when documents are short next to "
                        "--max-seq-length (README, Pretraining)")
    p.add_argument("--builtin-bytes", type=int, default=DEFAULT_BUILTIN_BYTES,
                   help=f"size of the built-in corpus (default: {DEFAULT_BUILTIN_BYTES})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "data directory (prepares again even when the inputs and settings are the same)")


def run_prepare(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    tokenizer = FunnelTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else None
    manifest = prepare_corpus(args.corpus, tokenizer, args.max_seq_length, args.out, seed=args.seed,
                              eval_examples=args.eval_examples, doc_per_file=args.doc_per_file,
                              skip_bad_lines=args.skip_bad_lines, within_documents=args.within_documents,
                              overwrite=args.overwrite,
                              train_vocab=args.train_vocab, builtin_bytes=args.builtin_bytes,
                              show_progress=not args.quiet, other_inputs=[args.tokenizer])
    seconds = time.perf_counter() - started
    counts = manifest["counts"]
    print_json({
        "status": manifest["status"],
        "out": args.out,
        "examples": manifest["splits"],
        "max_seq_length": manifest["max_seq_length"],
        "documents": counts["documents"],
        "text_tokens": counts["text_tokens"],
        "padding_tokens": counts["padding"],
        "bad_lines_skipped": counts["bad_lines"],
        "vocab_size": manifest["vocab_size"],
        "tokenizer_fingerprint": manifest["tokenizer_fingerprint"],
        "seconds": round(seconds, 2),
        "tokens_per_second": round(counts["text_tokens"] / seconds) if manifest["status"] == "prepared" else None,
    })
    return 0


# ------------------------------------------------------------------------------------------------------- run
def _add_run(actions: argparse._SubParsersAction) -> None:
    p = add_command(actions, "run", run_pretraining, "pretrain on a prepared data directory (ELECTRA or MLM)",
                    all_cores=True)
    p.add_argument("--data", required=True, metavar="DATA_DIR", help="a directory written by `pretrain prepare`")
    add_model_options(p, max_seq_length=None)
    p.add_argument("--max-seq-length", type=int, help="must equal the data's (default: the data's)")
    group = p.add_argument_group("objective (flags override a recipe section's _task_options)")
    group.add_argument("--objective", choices=OBJECTIVES, default=None, help=f"default: {ELECTRA}")
    group.add_argument("--mask-prob", type=float, help=f"fraction of tokens masked (default: {DEFAULT_MASK_PROB})")
    group.add_argument("--generator-size", type=float, metavar="FRACTION",
                       help="ELECTRA generator: n_head and d_inner as a fraction of the discriminator's (d_model is "
                            f"shared with the embeddings; default: {DEFAULT_GENERATOR_SIZE})")
    group.add_argument("--generator-config", metavar="FILE", help="ELECTRA generator: a config .json instead")
    group.add_argument("--disc-weight", type=float,
                       help=f"ELECTRA: weight of the discriminator's loss (default: {DEFAULT_DISC_WEIGHT:g})")
    add_training_options(p)


def objective_options(args: argparse.Namespace) -> dict:
    """The objective flags that were set (after `training_arguments(args)` has filled unset ones from the recipe
    section's `_task_options`); pretrain() has the defaults of the rest."""
    return {name: getattr(args, name) for name in OBJECTIVE_FLAGS if getattr(args, name) is not None}


def run_pretraining(args: argparse.Namespace) -> int:
    if args.train_vocab:
        raise InputError("--train-vocab belongs to `pretrain prepare` (the data directory keeps the vocabulary "
                         "it was tokenised with)")
    training = training_arguments(args)  # first: it applies the recipe's _task_options to the unset flags
    print_json(pretrain(args.data, training, args.model, **objective_options(args), init=args.init,
                        tokenizer=args.tokenizer, revision=args.revision, max_seq_length=args.max_seq_length,
                        ignore_mismatched_sizes=args.ignore_mismatched_sizes))
    return 0
