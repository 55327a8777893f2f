"""The output rules (README "Output rules"): what is refused before any work, what --resume / --overwrite do, that
an input is never touched, that filesystem errors are one-line user errors, and that staging leftovers are cleaned.

Filesystem failures are simulated by monkeypatching (the tests run as root, whom chmod does not stop):
`tempfile.mkstemp` (the writability probe: read-only file system, permission denied), `os.replace` (the rename
that publishes a result: disk full, read-only), and the trainer module's `open` (the training log: disk full).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelConfig, FunnelModel
from paddlefunnel.cli import main
from paddlefunnel.data import write_synthetic_glue
from paddlefunnel.errors import OutputError, OutputExistsError
from paddlefunnel.io_utils import (atomic_directory, atomic_write_text, check_output_dir, remove_staging_leftovers,
                                   writing)
from paddlefunnel.training import TrainingArguments
from paddlefunnel.training.rundir import PREVIOUS_RUN_DIR, check_run_directory

TINY_MODEL = {"model_type": "funnel", "vocab_size": 300, "block_sizes": [1, 1], "d_model": 16, "n_head": 2,
              "d_head": 8, "d_inner": 32, "num_decoder_layers": 1}


# ----------------------------------------------------------------------------------------------- helpers
def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) -> sha256 of its bytes: "survives byte for byte" is equality."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def fake_run(out: Path) -> dict[str, str]:
    """A finished training run's files, with contents no real run writes."""
    (out / "best").mkdir(parents=True)
    (out / "best" / "model.safetensors").write_bytes(b"old best weights")
    (out / "checkpoint-last").mkdir()
    (out / "checkpoint-last" / "trainer_state.json").write_text('{"old": true}')
    (out / "log.jsonl").write_text('{"event": "old"}\n')
    (out / "eval_results.json").write_text('{"old": 1}\n')
    return snapshot(out)


def one_error_line(capsys, *fragments: str, alone: bool = True) -> str:
    """The command's error is one line, the last on stderr; `alone`: refused before any work, so nothing else."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(lines)
    assert [line for line in lines if ": error: " in line] == lines[-1:], lines
    if alone:
        assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines)
    return lines[-1]


@pytest.fixture(scope="module")
def glue_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    write_synthetic_glue(root, n_train=64, n_dev=16, n_test=8, seed=0)
    return root


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    paddle.seed(0)
    directory = tmp_path_factory.mktemp("src") / "model"
    FunnelModel(FunnelConfig(**tiny())).save_pretrained(directory)
    return directory


def train_cmd(glue_data, tiny_config, out, *extra) -> list[str]:
    return ["train", "glue", "--task", "qnli", "--data-dir", str(glue_data), "--model", str(tiny_config), "--init",
            "random", "--out", str(out), "--train-vocab", "200", "--max-seq-length", "16", "--batch-size", "16",
            "--max-steps", "2", "--no-progress", "--seed", "0", *extra]


def never(*_args, **_kwargs):
    raise AssertionError("work started before the output location was checked")


# -------------------------------------------------------------------------------------- train --out rules
def test_train_into_a_finished_run_is_refused_and_the_run_survives(glue_data, tiny_config, tmp_path, capsys,
                                                                   monkeypatch):
    out = tmp_path / "run"
    before = fake_run(out)
    monkeypatch.setattr("paddlefunnel.tasks.classification.read_glue", never)  # refused before reading data
    assert main(train_cmd(glue_data, tiny_config, out)) == 2
    one_error_line(capsys, str(out), "--resume to continue it or --overwrite to start over", "best")
    assert snapshot(out) == before


def test_train_partial_run_is_refused_too(glue_data, tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text('{"event": "train", "step": 3}\n')
    (out / "notes.txt").write_text("mine")  # not a run file: alone it would not be refused, and it is never touched
    before = snapshot(out)
    assert main(train_cmd(glue_data, tiny_config, out)) == 2
    one_error_line(capsys, "log.jsonl", "--overwrite")
    assert snapshot(out) == before


def test_train_overwrite_starts_over_and_discards_the_old_run_only_at_the_end(glue_data, tiny_config, tmp_path,
                                                                              capsys):
    out = tmp_path / "run"
    fake_run(out)
    (out / "notes.txt").write_text("mine")
    assert main(train_cmd(glue_data, tiny_config, out, "--overwrite")) == 0
    assert (out / "best" / "model.safetensors").read_bytes() != b"old best weights"
    assert '"old"' not in (out / "log.jsonl").read_text()
    assert json.loads((out / "eval_results.json").read_text())["steps"] == 2
    assert not (out / PREVIOUS_RUN_DIR).exists() and (out / "notes.txt").read_text() == "mine"


def test_train_overwrite_that_fails_keeps_the_old_run(glue_data, tiny_config, tmp_path, monkeypatch):
    """Failing while loading (bad data): nothing moved. Failing during training: the old run is intact in
    .previous-run/, and no mix of two runs is left in --out."""
    out = tmp_path / "run"
    before = fake_run(out)
    bad_data = tmp_path / "bad"
    (bad_data / "QNLI").mkdir(parents=True)
    (bad_data / "QNLI" / "train.tsv").write_text("index\tquestion\n")
    assert main(train_cmd(bad_data, tiny_config, out, "--overwrite")) == 2
    assert snapshot(out) == before

    def crash(self, micro_batches):
        raise RuntimeError("killed")

    monkeypatch.setattr("paddlefunnel.training.trainer.Trainer._optimizer_step", crash)
    with pytest.raises(RuntimeError, match="killed"):
        main(train_cmd(glue_data, tiny_config, out, "--overwrite"))
    assert snapshot(out / PREVIOUS_RUN_DIR) == before
    assert not (out / "best").exists() and not (out / "checkpoint-last").exists()


def test_train_resume_and_overwrite_together_are_refused(glue_data, tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    before = fake_run(out)
    assert main(train_cmd(glue_data, tiny_config, out, "--resume", "--overwrite")) == 2
    one_error_line(capsys, "give one, not both")
    assert snapshot(out) == before


def test_train_out_that_is_a_file_or_holds_an_input_is_refused(glue_data, tiny_config, tmp_path, capsys):
    a_file = tmp_path / "run.txt"
    a_file.write_text("keep")
    assert main(train_cmd(glue_data, tiny_config, a_file)) == 2
    one_error_line(capsys, "existing file, not a directory")
    assert a_file.read_text() == "keep"
    assert main(train_cmd(glue_data, tiny_config, a_file / "sub")) == 2
    one_error_line(capsys, "is a file, not a directory")
    before = snapshot(glue_data)
    for out in (glue_data, glue_data.parent, glue_data / "QNLI" / "run"):  # equal, containing, inside
        assert main(train_cmd(glue_data, tiny_config, out, "--overwrite")) == 2
        one_error_line(capsys, "choose another location", str(glue_data))
    assert snapshot(glue_data) == before


def test_resume_puts_back_a_checkpoint_caught_between_two_renames(tmp_path):
    out = tmp_path / "run"
    (out / ".checkpoint-last.old").mkdir(parents=True)  # killed after moving the old one away, before the new one
    (out / ".checkpoint-last.old" / "trainer_state.json").write_text("{}")
    (out / ".checkpoint-last.ab12cd34.tmp").mkdir()  # the new one, unfinished
    check_run_directory(TrainingArguments(output_dir=str(out), resume=True))
    assert (out / "checkpoint-last" / "trainer_state.json").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-last"]


# ---------------------------------------------------------------------------- export / convert overwrite
@pytest.mark.parametrize("command", ["export", "convert"])
def test_overwrite_never_touches_the_source(command, model_dir, tmp_path, capsys):
    source = tmp_path / "runs" / "x" / "best"
    source.mkdir(parents=True)
    for path in model_dir.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    before = snapshot(tmp_path / "runs")
    for target in (source, source.parent, source / "inside"):  # equal, containing, inside
        assert main([command, str(source), str(target), "--overwrite"]) == 2
        one_error_line(capsys, "choose another location", str(source))
        assert snapshot(tmp_path / "runs") == before


@pytest.mark.parametrize("command", ["export", "convert"])
def test_target_that_is_a_file_is_a_one_line_error(command, model_dir, tmp_path, capsys):
    target = tmp_path / "out"
    target.write_text("keep")
    assert main([command, str(model_dir), str(target), "--overwrite"]) == 2
    one_error_line(capsys, str(target), "existing file, not a directory")
    assert target.read_text() == "keep"


# --------------------------------------------------------------------------------------- filesystem errors
def refuse_mkstemp_under(monkeypatch, root: Path, code: int, reason: str) -> None:
    """Simulate a read-only / forbidden `root`: creating a temporary file there fails like the kernel would."""
    real = tempfile.mkstemp

    def fake(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(root.resolve()):
            raise OSError(code, reason, str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", fake)


def test_read_only_out_is_refused_before_any_training(glue_data, tiny_config, tmp_path, capsys, monkeypatch):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    refuse_mkstemp_under(monkeypatch, readonly, errno.EROFS, "Read-only file system")
    monkeypatch.setattr("paddlefunnel.tasks.classification.read_glue", never)
    assert main(train_cmd(glue_data, tiny_config, readonly / "run")) == 2
    one_error_line(capsys, str(readonly / "run"), "training output directory", "Read-only file system")
    assert not (readonly / "run").exists()


@pytest.mark.parametrize("command", ["export", "convert"])
def test_unwritable_target_is_refused_before_loading(command, model_dir, tmp_path, capsys, monkeypatch):
    refuse_mkstemp_under(monkeypatch, tmp_path / "locked", errno.EACCES, "Permission denied")
    (tmp_path / "locked").mkdir()
    monkeypatch.setattr("paddlefunnel.deploy.export.load_model", never)
    monkeypatch.setattr("paddlefunnel.checkpoint.convert.resolve_pretrained", never)
    assert main([command, str(model_dir), str(tmp_path / "locked" / "out")]) == 2
    one_error_line(capsys, "Permission denied", str(tmp_path / "locked" / "out"))


def test_disk_full_while_checkpointing_is_a_one_line_error(glue_data, tiny_config, tmp_path, capsys, monkeypatch):
    real = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "checkpoint-last":
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "run"
    assert main(train_cmd(glue_data, tiny_config, out)) == 2
    one_error_line(capsys, str(out / "checkpoint-last"), "checkpoint", "No space left on device", alone=False)
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())  # the staging folder was removed


def test_disk_full_while_logging_is_a_one_line_error(glue_data, tiny_config, tmp_path, capsys, monkeypatch):
    import paddlefunnel.training.trainer as trainer_module

    def full(path, *args, **kwargs):
        if Path(path).name == "log.jsonl":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "open", full, raising=False)
    out = tmp_path / "run"
    assert main(train_cmd(glue_data, tiny_config, out, "--logging-steps", "1")) == 2
    one_error_line(capsys, str(out / "log.jsonl"), "training log", "No space left on device", alone=False)


def test_write_errors_become_output_errors_but_input_errors_do_not(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")

    def read_only(src, dst, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OutputError, match=r"out\.txt: cannot write the metrics file: Read-only file system") as err:
        atomic_write_text(target, "second", "metrics file")
    assert isinstance(err.value, OSError)
    monkeypatch.undo()
    assert target.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(FileNotFoundError) as missing, atomic_directory(tmp_path / "d") as tmp:
        (tmp_path / "no-such-input").read_text()  # reading an input inside the block: not an output error
    assert not isinstance(missing.value, OutputError) and not (tmp_path / "d").exists()
    with pytest.raises(OutputError, match="disk"), writing(tmp_path / "x", "disk test"):
        raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------------------- other commands' outputs
def test_prediction_and_metrics_outputs_are_checked_first(glue_data, model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("paddlefunnel.cli.predict.Predictor", never)
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a"}\n')
    assert main(["predict", "--model", str(model_dir), "--input", str(jsonl), "--output", str(a_dir)]) == 2
    one_error_line(capsys, "predictions file", "existing directory, not a file")
    assert main(["predict", "--model", str(model_dir), "--input", str(jsonl), "--output", str(jsonl)]) == 2
    one_error_line(capsys, "is the input")
    assert jsonl.read_text() == '{"text": "a"}\n'

    pred = tmp_path / "pred.json"
    pred.write_text('{"q": "x"}')
    data = tmp_path / "dev.json"
    data.write_text('{"version": "v2.0", "data": []}')
    assert main(["evaluate", "squad", "--data-file", str(data), "--pred-file", str(pred), "--out-file", str(pred)]) == 2
    one_error_line(capsys, "metrics file", "is the input")
    assert pred.read_text() == '{"q": "x"}'
    assert main(["evaluate", "glue", "--task", "qnli", "--data-dir", str(glue_data), "--model", str(model_dir),
                 "--out-file", str(a_dir)]) == 2
    one_error_line(capsys, "existing directory, not a file")

    monkeypatch.setattr("paddlefunnel.tasks.classification.load_for_inference", never)
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep")
    assert main(["predict", "glue", "--task", "qnli", "--data-dir", str(glue_data), "--model", str(model_dir),
                 "--out", str(a_file)]) == 2
    one_error_line(capsys, "prediction directory", "existing file, not a directory")
    monkeypatch.setattr("paddlefunnel.tasks.squad.load_settings", never)
    assert main(["predict", "squad", "--data-file", str(data), "--model", str(model_dir), "--out",
                 str(model_dir)]) == 2
    one_error_line(capsys, "is the input")


def test_vocab_train_out_checked_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("paddlefunnel.cli.vocab.FunnelTokenizer.train", never)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n")
    a_file = tmp_path / "tok"
    a_file.write_text("keep")
    assert main(["vocab", "train", str(corpus), "--vocab-size", "50", "--out", str(a_file)]) == 2
    one_error_line(capsys, "vocabulary directory", "existing file, not a directory")
    assert main(["vocab", "train", str(corpus), "--vocab-size", "50", "--out", str(tmp_path)]) == 2
    one_error_line(capsys, "contains the input")


# ------------------------------------------------------------------------------------- staging leftovers
def test_staging_leftovers_of_a_killed_export_are_cleaned(model_dir, tmp_path, capsys):
    target = tmp_path / "exp"
    ours = [tmp_path / ".exp.k1ll3d_1.tmp", tmp_path / ".exp.old"]
    for path in ours:
        path.mkdir()
        (path / "model.json").write_text("half")
    theirs = [tmp_path / ".exp.mine", tmp_path / ".other.k1ll3d_1.tmp", tmp_path / ".exp.toolongname.tmp"]
    for path in theirs:
        path.write_text("not ours")
    target.mkdir()  # a previous export: the `.old` copy beside it is stale
    (target / "model.json").write_text("previous")
    assert main(["export", str(model_dir), str(target), "--overwrite"]) == 0
    assert (target / "export.json").is_file() and (target / "model.json").read_text() != "previous"
    assert not any(p.exists() for p in ours)
    assert all(p.read_text() == "not ours" for p in theirs)


def test_leftover_old_copy_comes_back_when_the_target_is_missing(tmp_path):
    old = tmp_path / ".model.old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    assert remove_staging_leftovers(tmp_path / "model") == [old]
    assert (tmp_path / "model" / "config.json").read_text() == "{}" and not old.exists()
    with pytest.raises(OutputExistsError, match="not empty"):
        check_output_dir(tmp_path / "model", what="export directory")


def test_a_location_that_cannot_even_be_looked_at_is_one_error(tmp_path, monkeypatch):
    """Path.exists raises PermissionError (EACCES) on Python 3.11 for a directory we may not search."""
    target = tmp_path / "locked" / "run"
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(OutputError, match=r"locked/run: cannot write the training output directory"):
        check_output_dir(target, what="training output directory", previous=("best",))


def test_a_write_error_inside_a_staged_directory_names_the_real_output(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("notes.txt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError) as caught:
        with atomic_directory(tmp_path / "export") as staging:
            atomic_write_text(staging / "notes.txt", "x")
    message = str(caught.value)
    assert str(tmp_path / "export") in message and ".tmp" not in message and "No space left" in message
    assert not (tmp_path / "export").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
