"""`paddlefunnel vocab train`: a WordPiece vocabulary for a Funnel tokenizer."""

from __future__ import annotations

import argparse

from ..io_utils import check_output_dir
from ..tokenizer import FunnelTokenizer
from .options import add_command


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("vocab", help="build a WordPiece vocabulary for a Funnel tokenizer", allow_abbrev=False)
    actions = parser.add_subparsers(dest="vocab_command", required=True, metavar="ACTION")
    _add_train(actions)


def _add_train(actions: argparse._SubParsersAction) -> None:
    p = add_command(actions, "train", run_train,
                    "train a vocabulary on text files (Funnel special tokens get ids 0-6)")
    p.add_argument("corpus", nargs="+", help="UTF-8 text files, read line by line")
    p.add_argument("--vocab-size", type=int, required=True, help="vocabulary size, special tokens included")
    p.add_argument("--out", required=True, help="directory for vocab.txt, tokenizer.json, tokenizer_config.json")
    p.add_argument("--min-frequency", type=int, default=2, help="least count for a merge (default: 2)")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case, like Funnel)")
    p.add_argument("--max-length", type=int, default=512, help="model_max_length written to the config (default: 512)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_train(args: argparse.Namespace) -> int:
    check_output_dir(args.out, what="vocabulary directory", inputs=args.corpus, previous=())  # before training
    tokenizer = FunnelTokenizer.train(args.corpus, args.vocab_size, min_frequency=args.min_frequency,
                                      show_progress=not args.quiet, do_lower_case=not args.cased,
                                      model_max_length=args.max_length)
    tokenizer.save_pretrained(args.out)
    print(f"wrote a {len(tokenizer)}-token vocabulary to {args.out}")
    return 0
