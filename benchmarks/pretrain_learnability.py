"""Does pretraining learn, and does it help? (not a test: CPU-minutes to an hour)

1. Prepares the built-in corpus (a vocabulary trained on it), then pretrains a tiny Funnel from scratch with
   ELECTRA and/or MLM, evaluating on the held-out split every --eval-every steps. Baselines: ELECTRA's
   discriminator against always answering "original" (accuracy = 1 - replaced fraction); MLM's masked accuracy
   against always predicting the training split's most frequent non-special token.
2. Fine-tunes each pretrained model (ELECTRA's discriminator, and with --pretrained electra mlm also the MLM
   model) and the same architecture from random weights ("scratch") on small labelled subsets of the synthetic
   tasks: the QNLI-layout pairs (`write_synthetic_glue`, first --fraction of the training rows) and the SQuAD
   v1.1-format questions (`synthetic_squad`, first --fraction of the articles; `squad2`: the v2.0 format). Protocol, the same for every
   start: the same data, --finetune-steps, batch, warmup and seeds; the learning rate is each start's best
   (highest mean over the seeds) of the same --finetune-lrs grid, and every grid point is printed too; the score
   of a run is its best dev evaluation (the Trainer evaluates at every epoch end, as fine-tuning keeps its best
   checkpoint), the last evaluation is recorded beside it. Prints mean, sd, min and max over the seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W            # everything
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --within-documents  # RESULTS.md's data
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --pretrain-only --objectives mlm
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --finetune-only \
        --tasks squad --starts electra scratch --finetune-lrs 1e-3 3e-3

With --jobs 2 the fine-tuning runs go to two worker processes (one thread each).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from paddlefunnel.config import FunnelConfig
from paddlefunnel.data.synthetic import synthetic_squad, write_synthetic_glue, write_synthetic_squad
from paddlefunnel.pretraining import PreparedCorpus, prepare_corpus, pretrain
from paddlefunnel.pretraining.run import DEMO_CONFIG, OUTPUT_DIRS
from paddlefunnel.tasks.classification import train_glue
from paddlefunnel.tasks.squad import SquadSettings, train_squad
from paddlefunnel.training import TrainingArguments

SCRATCH = "scratch"
SQUAD_SETTINGS = SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16)
SQUAD_TASKS = {"squad": False, "squad2": True}  # task -> SQuAD v2.0 format (unanswerable questions too)
SQUAD_ARTICLES, SQUAD_DEV_ARTICLES = 2000, 100


# ------------------------------------------------------------------------------------------- pretraining
def pretraining_args(out: Path, steps: int, eval_every: int, seed: int) -> TrainingArguments:
    return TrainingArguments(output_dir=str(out), learning_rate=2e-3, per_device_batch_size=16, max_steps=steps,
                             warmup_steps=max(1, steps // 10), logging_steps=max(1, eval_every // 2),
                             eval_steps=eval_every, eval_batch_size=64, seed=seed, progress=False, overwrite=True)


def evaluations(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if r["event"] == "eval"]


def unigram_baseline(data_dir: Path) -> float:
    """Accuracy of always predicting the most frequent non-special training token, over non-special tokens
    (the positions MLM masks are drawn uniformly among them)."""
    corpus = PreparedCorpus.open(data_dir)
    train = corpus.split("train")
    ids = np.asarray(train.batch(list(range(min(len(train), 4000))))["input_ids"])
    specials = list(corpus.manifest["special_ids"].values())
    tokens = ids[~np.isin(ids, specials)]
    return float(np.bincount(tokens).max() / len(tokens))


def pretraining_part(root: Path, args: argparse.Namespace) -> dict:
    if not (root / "data" / "manifest.json").is_file():
        prepare_corpus(["builtin"], None, 64, root / "data", train_vocab=1000, builtin_bytes=args.corpus_bytes,
                       within_documents=args.within_documents, show_progress=False, overwrite=True)
    config_file(root).write_text(FunnelConfig(vocab_size=1000, **DEMO_CONFIG).to_json_string())
    results: dict = {"unigram_baseline": unigram_baseline(root / "data")}
    for objective in args.objectives:
        t0 = time.time()
        pretrain(root / "data", pretraining_args(root / objective, args.steps, args.eval_every, 0),
                 str(config_file(root)), objective=objective, init="random", generator_size=args.generator_size)
        results[objective] = {"seconds": round(time.time() - t0), "evals": evaluations(root / objective)}
        for record in results[objective]["evals"]:
            keys = ("disc_acc", "disc_acc_all_original", "gen_acc") if objective == "electra" else ("mlm_acc",)
            print(objective, "step", record["step"], {k: round(record[k], 4) for k in keys}, flush=True)
    print("MLM unigram-frequency baseline", round(results["unigram_baseline"], 4), flush=True)
    return results


def config_file(root: Path) -> Path:
    return root / "tiny_config.json"


# --------------------------------------------------------------------------------------- fine-tuning data
def glue_subset(root: Path, fraction: float) -> Path:
    """The synthetic QNLI task with only the first `fraction` of its training rows labelled for training."""
    subset = root / "subset" / "QNLI"
    if (subset / "dev.tsv").is_file():
        return subset.parent
    full = write_synthetic_glue(root / "full")
    subset.mkdir(parents=True, exist_ok=True)
    rows = (full / "train.tsv").read_text().splitlines()
    keep = int(round((len(rows) - 1) * fraction))
    (subset / "train.tsv").write_text("\n".join(rows[: 1 + keep]) + "\n")
    (subset / "dev.tsv").write_text((full / "dev.tsv").read_text())
    return subset.parent


def squad_subset(root: Path, fraction: float, version_2: bool = False) -> tuple[Path, Path]:
    """SQuAD-format synthetic questions (v1.1, or v2.0 with unanswerable ones): the first `fraction` of
    SQUAD_ARTICLES articles (about four answerable questions each) for training, SQUAD_DEV_ARTICLES drawn with
    another seed for dev."""
    train, dev = root / "train.json", root / "dev.json"
    if not dev.is_file():
        root.mkdir(parents=True, exist_ok=True)
        document = synthetic_squad(SQUAD_ARTICLES, seed=0, version_2=version_2)
        document["data"] = document["data"][: int(round(SQUAD_ARTICLES * fraction))]
        train.write_text(json.dumps(document))
        write_synthetic_squad(dev, SQUAD_DEV_ARTICLES, seed=1, version_2=version_2)
    return train, dev


# ------------------------------------------------------------------------------------------- fine-tuning
def start_model(root: Path, start: str) -> str:
    """The model directory a start fine-tunes from (for scratch: the config it is built in the shape of)."""
    return str(config_file(root) if start == SCRATCH else root / start / OUTPUT_DIRS[start][0])


def finetune_once(root: Path, task: str, start: str, lr: float, seed: int, steps: int, fraction: float) -> dict:
    """One fine-tuning run; returns the best and the last dev score (accuracy for QNLI, F1 for SQuAD)."""
    out = root / f"ft_{task}_{start}_{lr:g}_{seed}"
    args = TrainingArguments(output_dir=str(out), learning_rate=lr, per_device_batch_size=16, max_steps=steps,
                             warmup_ratio=0.1, seed=seed, progress=False, overwrite=True)
    scratch = {"init": "random", "tokenizer": str(root / "data" / "tokenizer")} if start == SCRATCH else {}
    t0 = time.time()
    if task == "qnli":
        summary = train_glue("qnli", str(glue_subset(root / "glue", fraction)), args, start_model(root, start),
                             max_seq_length=64, **scratch)
        best, key = float(summary["best_acc"]), "acc"
    else:
        version_2 = SQUAD_TASKS[task]
        train, dev = squad_subset(root / task, fraction, version_2)
        settings = dataclasses.replace(SQUAD_SETTINGS, version_2_with_negative=version_2)
        summary = train_squad(str(train), str(dev), args, start_model(root, start), settings, **scratch)
        best, key = float(summary["best_f1"]), "f1"
    last = [r[key] for r in evaluations(out) if key in r][-1]
    return {"task": task, "start": start, "lr": lr, "seed": seed, "best": best, "last": float(last),
            "seconds": round(time.time() - t0)}


def run_in_worker(root: Path, job: tuple, steps: int, fraction: float) -> dict:
    """One fine-tuning run in its own single-threaded process (so two can share two cores)."""
    task, start, lr, seed = job
    code = ("import json, sys; sys.path.insert(0, %r); import pretrain_learnability as p; "
            "print('RESULT', json.dumps(p.finetune_once(p.Path(%r), %r, %r, %r, %r, %r, %r)))"
            % (str(Path(__file__).parent), str(root), task, start, lr, seed, steps, fraction))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"fine-tuning run {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


def summarise(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def finetuning_part(root: Path, args: argparse.Namespace) -> dict:
    jobs = list(itertools.product(args.tasks, args.starts, args.finetune_lrs, args.seeds))
    log = root / "finetune_runs.jsonl"
    done = {} if not log.is_file() else {(r["task"], r["start"], r["lr"], r["seed"]): r
                                         for r in map(json.loads, log.read_text().splitlines())}
    todo = [job for job in jobs if job not in done]
    glue_subset(root / "glue", args.fraction)  # the data once, before the workers read it
    for task in set(args.tasks) & set(SQUAD_TASKS):
        squad_subset(root / task, args.fraction, SQUAD_TASKS[task])
    with ThreadPoolExecutor(args.jobs) as pool, log.open("a") as handle:
        for result in pool.map(lambda job: run_in_worker(root, job, args.finetune_steps, args.fraction), todo):
            handle.write(json.dumps(result) + "\n")
            handle.flush()
            done[result["task"], result["start"], result["lr"], result["seed"]] = result
            print("run", result, flush=True)
    report: dict = {}
    for task, start in itertools.product(args.tasks, args.starts):
        grid = {lr: {kind: summarise([done[task, start, lr, s][kind] for s in args.seeds])
                     for kind in ("best", "last")} for lr in args.finetune_lrs}
        chosen = max(grid, key=lambda lr: grid[lr]["best"]["mean"])
        report[f"{task}/{start}"] = {"grid": grid, "chosen_lr": chosen}
        for lr, scores in grid.items():
            print(f"{task} {start:8s} lr {lr:g}: best-eval mean {scores['best']['mean']:.4f} sd "
                  f"{scores['best']['sd']:.4f} {[round(v, 4) for v in scores['best']['values']]}; last-eval mean "
                  f"{scores['last']['mean']:.4f} sd {scores['last']['sd']:.4f}" + ("  <- chosen" if lr == chosen
                                                                                     else ""), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="pretraining steps per objective")
    parser.add_argument("--objectives", nargs="+", choices=["electra", "mlm"], default=["electra", "mlm"])
    parser.add_argument("--generator-size", type=float, default=0.5,
                        help="ELECTRA generator width as a fraction of the discriminator's (0.25: one head of 16)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--corpus-bytes", type=int, default=2 << 20)
    parser.add_argument("--within-documents", action="store_true",
                        help="prepare the corpus so that no example mixes two documents (see prepare_corpus)")
    parser.add_argument("--tasks", nargs="+", choices=["qnli", *SQUAD_TASKS], default=["qnli", "squad"],
                        help="squad: the v1.1 format; squad2: v2.0, with unanswerable questions")
    parser.add_argument("--starts", nargs="+", choices=["electra", "mlm", SCRATCH], default=["electra", SCRATCH],
                        help="what to fine-tune: a pretrained model (its run must be in --out) or random weights")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds")
    parser.add_argument("--finetune-steps", type=int, default=600)
    parser.add_argument("--finetune-lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3],
                        help="the learning-rate grid every start is tried on")
    parser.add_argument("--fraction", type=float, default=0.1, help="labelled share of the fine-tuning data")
    parser.add_argument("--jobs", type=int, default=1, help="fine-tuning runs at a time (one thread each)")
    parser.add_argument("--pretrain-only", action="store_true")
    parser.add_argument("--finetune-only", action="store_true",
                        help="reuse the data and pretrained models already in --out; run the fine-tuning part only")
    parser.add_argument("--out", help="work directory (default: a temporary one); finished fine-tuning runs "
                        "recorded in its finetune_runs.jsonl are not run again")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="pretrain_learnability."))
    root.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = {} if args.finetune_only else {"pretraining": pretraining_part(root, args)}
    if not args.pretrain_only:
        results["finetune"] = finetuning_part(root, args)
    name = f"learnability_{int(started)}.json"
    (root / name).write_text(json.dumps(results, indent=2))
    print(f"total {time.time() - started:.0f} s; details in {root / name}")


if __name__ == "__main__":
    main()
