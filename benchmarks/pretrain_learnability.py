"""Does pretraining learn, and does it help? (not a test: CPU-minutes to an hour)

1. Prepares the built-in corpus (a vocabulary trained on it), then pretrains a tiny Funnel from scratch with
   ELECTRA and/or MLM, evaluating on the held-out split every --eval-every steps. Baselines: ELECTRA's
   discriminator against always answering "original" (accuracy = 1 - replaced fraction); MLM's masked accuracy
   against always predicting the training split's most frequent non-special token.
2. Fine-tunes each pretrained model (ELECTRA's discriminator, and with --starts electra mlm also the MLM
   model) and the same architecture from random weights ("scratch") on small labelled subsets of the synthetic
   tasks: the QNLI-layout pairs (`write_synthetic_glue`, first --fraction of the training rows) and the SQuAD
   v1.1-format questions (`synthetic_squad`, first --fraction of the articles; `squad2`: the v2.0 format).
   Protocol, the same for every start: the same data, --finetune-steps, batch, warmup and seeds; the learning
   rate is each start's best (highest mean over the seeds) of the same --finetune-lrs grid, and every grid point
   is printed too; the score of a run is its best dev evaluation (as fine-tuning keeps its best checkpoint; the
   Trainer evaluates at every epoch end, or with --finetune-eval-steps N every N steps, and at the last step),
   the last evaluation is recorded beside it. Prints mean, sd, min and max over the seeds.
3. Diagnostics: `--reinit GROUP ...` fine-tunes the pretrained starts with some of their parameters drawn afresh
   by the model's own initialiser (see REINIT_GROUPS), to find which pretrained part helps or hurts;
   `--pretrained-dir NAME=PATH` adds a start NAME, a model from another pretraining run (a model directory, or a
   run or --out directory holding one). A run is recorded in --out's finetune_runs.jsonl under its task, start
   (with "-reinit-GROUP..."), learning rate, seed, steps and evaluation interval, so runs of different protocols
   never stand in for each other; its directory is ft_TASK_START_LR_SEED, plus _stepsN_evalM off the default
   protocol (600 steps, evaluation at epoch ends).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W            # everything
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --within-documents  # RESULTS.md's data
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --pretrain-only --objectives mlm
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --finetune-only \
        --tasks squad --starts electra scratch --finetune-lrs 1e-3 3e-3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --finetune-only \
        --tasks squad2 --starts electra --finetune-lrs 3e-3 --finetune-eval-steps 100 --reinit decoder
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrain_learnability.py --out W --finetune-only \
        --tasks squad2 --starts long --pretrained-dir long=W2/electra --finetune-lrs 3e-3

With --jobs 2 the fine-tuning runs go to two worker processes (one thread each).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn

from paddlefunnel.config import FunnelConfig
from paddlefunnel.data.synthetic import synthetic_squad, write_synthetic_glue, write_synthetic_squad
from paddlefunnel.modeling import load_model
from paddlefunnel.modeling.attention import FunnelRelMultiheadAttention
from paddlefunnel.modeling.model import FunnelPreTrainedModel
from paddlefunnel.pretraining import PreparedCorpus, prepare_corpus, pretrain
from paddlefunnel.pretraining.run import DEMO_CONFIG, OUTPUT_DIRS
from paddlefunnel.registry import CONFIG_FILE
from paddlefunnel.tasks.classification import train_glue
from paddlefunnel.tasks.squad import SquadSettings, train_squad
from paddlefunnel.tokenizer import FunnelTokenizer
from paddlefunnel.training import TrainingArguments

SCRATCH = "scratch"
DEFAULT_FINETUNE_STEPS = 600  # also the protocol of finetune_runs.jsonl records written before "steps" was recorded
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


# ------------------------------------------------------------------------------------ re-initialised starts
def decoder_layers(body: nn.Layer) -> list[nn.Layer]:
    """The decoder and its layers. The upsampling it starts with (modeling/pooling.py `upsample`: repeat the last
    block's output, add the first block's as a residual) has no parameters of its own, so this is all of it."""
    return body.decoder.sublayers(include_self=True)


def attention_layers(body: nn.Layer) -> list[nn.Layer]:
    """Every attention layer of the encoder and the decoder. Given one, the model's initialiser draws exactly its
    relative-position and token-type parameters (r_w_bias, r_r_bias, r_kernel, r_s_bias, seg_embed): its
    projections and LayerNorm are sublayers of their own, which this group leaves as pretrained."""
    return [layer for layer in body.sublayers() if isinstance(layer, FunnelRelMultiheadAttention)]


def embedding_layers(body: nn.Layer) -> list[nn.Layer]:
    """The word-embedding table and the LayerNorm after it (Funnel has no position or segment table there). The
    table is what pretraining taught about tokens; the LayerNorm alone is a per-feature scale and shift that the
    first layer could undo, so re-drawing only it would test nearly nothing."""
    return body.embeddings.sublayers(include_self=True)


# group -> (the layers of a body (FunnelModel) that `--reinit group` re-draws with the model's own initialiser,
# the names of those layers' own parameters it keeps re-drawn: None for all). "relative" and "segments" split
# "positions" into the relative-position term (its bias r_r_bias and projection r_kernel) and the token-type term
# (r_s_bias, seg_embed); r_w_bias, the content term's bias, is in "positions" only.
REINIT_GROUPS: dict[str, tuple[Callable[[nn.Layer], list[nn.Layer]], frozenset[str] | None]] = {
    "decoder": (decoder_layers, None), "positions": (attention_layers, None), "embeddings": (embedding_layers, None),
    "relative": (attention_layers, frozenset({"r_r_bias", "r_kernel"})),
    "segments": (attention_layers, frozenset({"r_s_bias", "seg_embed"}))}


def reinitialise(model: FunnelPreTrainedModel, groups: tuple[str, ...], seed: int) -> None:
    """Re-draw `groups` of a loaded model in place with the initialiser a model built from scratch gets
    (`FunnelPreTrainedModel._init_layer`, the reference's scheme), seeded, so runs are repeatable. For a group
    naming some of a layer's parameters, the others are put back as loaded."""
    paddle.seed(seed)
    body = model._body()
    for group in groups:
        layers, names = REINIT_GROUPS[group]
        for layer in layers(body):
            kept = {name: param.numpy().copy() for name, param in layer.named_parameters(include_sublayers=False)
                    if names is not None and name not in names}
            model._init_layer(layer)
            for name, value in kept.items():
                getattr(layer, name).set_value(value)


def reinitialised_copy(model_dir: str, groups: tuple[str, ...], seed: int, destination: Path) -> str:
    """`model_dir`'s model, as the class it was saved as, with `groups` re-drawn, saved with its tokenizer in
    `destination` for the fine-tuning to load (the task trainers take a model directory)."""
    model = load_model(model_dir)
    reinitialise(model, groups, seed)
    model.save_pretrained(destination)
    FunnelTokenizer.from_pretrained(model_dir).save_pretrained(destination)
    return str(destination)


# ------------------------------------------------------------------------------------------- fine-tuning
@dataclasses.dataclass(frozen=True)
class FinetuneRun:
    """One fine-tuning run. `start` names where its weights come from (scratch, an objective, a --pretrained-dir
    name), `model` the directory (for scratch: the config file whose shape it takes)."""

    task: str
    start: str
    lr: float
    seed: int
    model: str
    steps: int = DEFAULT_FINETUNE_STEPS
    eval_steps: int = 0
    reinit: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        """The start as recorded: "electra", or "electra-reinit-decoder" when groups were re-drawn."""
        return f"{self.start}-reinit-{'-'.join(self.reinit)}" if self.reinit else self.start

    @property
    def key(self) -> tuple:
        return (self.task, self.variant, self.lr, self.seed, self.steps, self.eval_steps)

    @property
    def directory(self) -> str:
        protocol = "" if (self.steps, self.eval_steps) == (DEFAULT_FINETUNE_STEPS, 0) else \
            f"_steps{self.steps}_eval{self.eval_steps}"
        return f"ft_{self.task}_{self.variant}_{self.lr:g}_{self.seed}{protocol}"


def record_key(record: dict) -> tuple:
    """A finetune_runs.jsonl record's FinetuneRun.key (records from before steps and eval_steps were recorded
    all used the default protocol)."""
    return (record["task"], record["start"], record["lr"], record["seed"],
            record.get("steps", DEFAULT_FINETUNE_STEPS), record.get("eval_steps", 0))


def model_directory(path: Path) -> Path:
    """The model a --pretrained-dir PATH means: PATH itself when it is a model directory, else the model a
    pretraining run wrote first (OUTPUT_DIRS: ELECTRA's discriminator, the MLM model) in PATH (a pretraining run's
    output directory) or in PATH/<objective> (a directory this benchmark prepared)."""
    candidates = [path, *(path / dirs[0] for dirs in OUTPUT_DIRS.values()),
                  *(path / objective / dirs[0] for objective, dirs in OUTPUT_DIRS.items())]
    found = [c for c in candidates if (c / CONFIG_FILE).is_file()]
    if len(found) != 1:
        raise argparse.ArgumentTypeError(f"{path}: expected one model directory ({CONFIG_FILE}) there or in its "
                                         f"pretraining outputs, found {[str(c) for c in found] or 'none'}")
    return found[0]


def pretrained_dir_option(value: str) -> tuple[str, str]:
    """--pretrained-dir NAME=PATH -> (NAME, model directory)."""
    name, _, path = value.partition("=")
    if not re.fullmatch(r"[A-Za-z0-9.]+", name) or not path or name in (SCRATCH, *OUTPUT_DIRS):
        raise argparse.ArgumentTypeError(f"{value!r}: expected NAME=PATH, NAME letters, digits and dots, not "
                                         f"{SCRATCH} or {' or '.join(OUTPUT_DIRS)}")
    return name, str(model_directory(Path(path)))


def start_models(root: Path, pretrained_dirs: list[tuple[str, str]]) -> dict[str, str]:
    """Start name -> the model directory it fine-tunes from (for scratch: the config it is built in the shape
    of): the objectives' runs in --out, and the --pretrained-dir ones."""
    return {SCRATCH: str(config_file(root)),
            **{objective: str(root / objective / dirs[0]) for objective, dirs in OUTPUT_DIRS.items()},
            **dict(pretrained_dirs)}


def finetune_once(root: Path, run: FinetuneRun, fraction: float) -> dict:
    """One fine-tuning run; returns the best and the last dev score (accuracy for QNLI, F1 for SQuAD)."""
    out = root / run.directory
    args = TrainingArguments(output_dir=str(out), learning_rate=run.lr, per_device_batch_size=16,
                             max_steps=run.steps, eval_steps=run.eval_steps, warmup_ratio=0.1, seed=run.seed,
                             progress=False, overwrite=True)
    scratch = {"init": "random", "tokenizer": str(root / "data" / "tokenizer")} if run.start == SCRATCH else {}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="reinit.") as staging:
        model = reinitialised_copy(run.model, run.reinit, run.seed, Path(staging)) if run.reinit else run.model
        if run.task == "qnli":
            summary = train_glue("qnli", str(glue_subset(root / "glue", fraction)), args, model, max_seq_length=64,
                                 **scratch)
            best, key = float(summary["best_acc"]), "acc"
        else:
            version_2 = SQUAD_TASKS[run.task]
            train, dev = squad_subset(root / run.task, fraction, version_2)
            settings = dataclasses.replace(SQUAD_SETTINGS, version_2_with_negative=version_2)
            summary = train_squad(str(train), str(dev), args, model, settings, **scratch)
            best, key = float(summary["best_f1"]), "f1"
    scores = [r for r in evaluations(out) if key in r]
    return {"task": run.task, "start": run.variant, "reinit": list(run.reinit), "model": run.model, "lr": run.lr,
            "seed": run.seed, "steps": run.steps, "eval_steps": run.eval_steps, "best": best,
            "best_step": summary.get("best_step"), "last": float(scores[-1][key]), "evaluations": len(scores),
            "seconds": round(time.time() - t0)}


def run_in_worker(root: Path, run: FinetuneRun, fraction: float) -> dict:
    """One fine-tuning run in its own single-threaded process (so two can share two cores)."""
    code = ("import json, sys; sys.path.insert(0, %r); import pretrain_learnability as p; spec = json.loads(%r); "
            "spec['reinit'] = tuple(spec['reinit']); "
            "print('RESULT', json.dumps(p.finetune_once(p.Path(%r), p.FinetuneRun(**spec), %r)))"
            % (str(Path(__file__).parent), json.dumps(dataclasses.asdict(run)), str(root), fraction))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"fine-tuning run {run} failed:\n{done.stderr[-3000:]}")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


def summarise(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def finetune_runs(root: Path, args: argparse.Namespace) -> list[FinetuneRun]:
    """Every run asked for; --reinit applies to the pretrained starts (scratch has nothing pretrained to re-draw)."""
    models = start_models(root, args.pretrained_dir)
    reinit = tuple(sorted(set(args.reinit)))
    return [FinetuneRun(task, start, lr, seed, models[start], args.finetune_steps, args.finetune_eval_steps,
                        () if start == SCRATCH else reinit)
            for task, start, lr, seed in itertools.product(args.tasks, args.starts, args.finetune_lrs, args.seeds)]


def read_done(log: Path) -> dict[tuple, dict]:
    return {} if not log.is_file() else {record_key(r): r for r in map(json.loads, log.read_text().splitlines())}


def finetuning_part(root: Path, args: argparse.Namespace) -> dict:
    runs = finetune_runs(root, args)
    log = root / "finetune_runs.jsonl"
    done = read_done(log)
    for run in runs:  # a --pretrained-dir name reused for another directory would mix two models' results
        if run.key in done and done[run.key].get("model", run.model) != run.model:
            raise SystemExit(f"{log} records {run.variant} fine-tuned from {done[run.key]['model']}, not "
                             f"{run.model}; choose another --pretrained-dir name")
    todo = [run for run in runs if run.key not in done]
    glue_subset(root / "glue", args.fraction)  # the data once, before the workers read it
    for task in set(args.tasks) & set(SQUAD_TASKS):
        squad_subset(root / task, args.fraction, SQUAD_TASKS[task])
    with ThreadPoolExecutor(args.jobs) as pool, log.open("a") as handle:
        for result in pool.map(lambda run: run_in_worker(root, run, args.fraction), todo):
            handle.write(json.dumps(result) + "\n")
            handle.flush()
            done[record_key(result)] = result
            print("run", result, flush=True)
    report: dict = {"steps": args.finetune_steps, "eval_steps": args.finetune_eval_steps}
    for task, variant in dict.fromkeys((run.task, run.variant) for run in runs):
        keys = {lr: [(task, variant, lr, seed, args.finetune_steps, args.finetune_eval_steps) for seed in args.seeds]
                for lr in args.finetune_lrs}
        grid = {lr: {kind: summarise([done[k][kind] for k in lr_keys]) for kind in ("best", "last")}
                for lr, lr_keys in keys.items()}
        chosen = max(grid, key=lambda lr: grid[lr]["best"]["mean"])
        report[f"{task}/{variant}"] = {"grid": grid, "chosen_lr": chosen}
        for lr, scores in grid.items():
            best = scores["best"]
            print(f"{task} {variant:8s} lr {lr:g} (steps {args.finetune_steps}, eval-steps "
                  f"{args.finetune_eval_steps}): best-eval mean {best['mean']:.4f} sd {best['sd']:.4f} min "
                  f"{best['min']:.4f} max {best['max']:.4f} {[round(v, 4) for v in best['values']]}; last-eval mean "
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
    parser.add_argument("--starts", nargs="+", default=["electra", SCRATCH],
                        help="what to fine-tune: a pretrained model (electra, mlm: its run must be in --out; or a "
                        "--pretrained-dir NAME) or random weights (scratch)")
    parser.add_argument("--pretrained-dir", metavar="NAME=PATH", type=pretrained_dir_option, action="append",
                        default=[], help="adds start NAME: the model in PATH (a model directory, a pretraining "
                        "run's output directory, or another --out of this benchmark); list NAME in --starts")
    parser.add_argument("--reinit", nargs="+", choices=sorted(REINIT_GROUPS), default=[], metavar="GROUP",
                        help="re-draw these parts of the pretrained starts before fine-tuning, with the model's own "
                        "initialiser: decoder (its layers; the upsampling has no parameters), positions (every "
                        "attention's r_w_bias, r_r_bias, r_kernel, r_s_bias, seg_embed), relative (r_r_bias, "
                        "r_kernel), segments (r_s_bias, seg_embed), embeddings (word table + its LayerNorm); "
                        "recorded as START-reinit-GROUP...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds")
    parser.add_argument("--finetune-steps", type=int, default=DEFAULT_FINETUNE_STEPS)
    parser.add_argument("--finetune-eval-steps", type=int, default=0,
                        help="evaluate every N fine-tuning steps and at the last (0: at every epoch end and the last)")
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
    known = {SCRATCH, *OUTPUT_DIRS, *(name for name, _ in args.pretrained_dir)}
    if set(args.starts) - known or args.finetune_eval_steps < 0 or args.finetune_steps < 1:
        parser.error(f"--starts must be among {sorted(known)}; --finetune-steps > 0, --finetune-eval-steps >= 0")
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
