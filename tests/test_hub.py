"""Hub names (`org/name`): the HuggingFace cache laid out by hand (offline), a stand-in hub on 127.0.0.1 for
downloads (HF_ENDPOINT), and explicit random initialisation (`--init random`). No internet."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import huggingface_hub.utils._http
import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import (MODEL_CLASSES, FunnelBaseModel, FunnelConfig, FunnelForSequenceClassification,
                          FunnelTokenizer)
from paddlefunnel.hub import CONFIG, TOKENIZER, WEIGHTS, resolve_pretrained
from paddlefunnel.cli import main
from paddlefunnel.data import demo_corpus
from paddlefunnel.errors import InputError, MissingFileError
from paddlefunnel.registry import BASE_BODY, heads_of_body

COMMIT = "a" * 40
COMMIT_V1 = "b" * 40
REPO = "tiny-org/tiny-funnel"


# ------------------------------------------------------------------------------------------- the source model
@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict[str, bytes]:
    """The files of a tiny Funnel saved by transformers (config.json + model.safetensors) with a vocab.txt."""
    from paddlefunnel.parity import make_reference_model

    directory = tmp_path_factory.mktemp("hf_source")
    tokenizer = FunnelTokenizer.train_from_iterator(demo_corpus(), 120, show_progress=False)
    tokenizer.save_pretrained(directory / "tok")
    make_reference_model(BASE_BODY, tiny(vocab_size=len(tokenizer))).save_pretrained(directory)
    files = {name: (directory / name).read_bytes() for name in ("config.json", "model.safetensors")}
    files["vocab.txt"] = (directory / "tok" / "vocab.txt").read_bytes()
    assert json.loads(files["config.json"])["architectures"] == [BASE_BODY]
    return files


def source_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    directory = tmp_path / "plain"
    directory.mkdir(exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def hidden(model, vocab_size: int) -> np.ndarray:
    ids = np.random.default_rng(0).integers(5, vocab_size, (2, 12))
    return model(input_ids=paddle.to_tensor(ids)).last_hidden_state.numpy()


def lay_out_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT, ref: str = "main") -> Path:
    """huggingface_hub's cache layout: models--org--name/{refs/<ref>, blobs/<hash>, snapshots/<commit>/<file>}."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../blobs") / blob.name)
    return root / "snapshots" / commit


@pytest.fixture
def offline_cache(tmp_path, monkeypatch, source):
    """The tiny model in a HuggingFace cache, found only through the environment set after import, offline."""
    cache = tmp_path / "hf_cache"
    lay_out_cache(cache, REPO, source)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert huggingface_hub.constants.HF_HUB_CACHE != str(cache)  # the library's import-time value is stale
    return cache


# -------------------------------------------------------------------------------------- (1) offline, cached
def test_from_pretrained_loads_a_cached_repo_offline(offline_cache, tmp_path, source):
    expected = FunnelBaseModel.from_pretrained(source_dir(tmp_path, source))
    ours = FunnelBaseModel.from_pretrained(REPO)
    vocab_size = ours.config.vocab_size
    np.testing.assert_array_equal(hidden(ours, vocab_size), hidden(expected, vocab_size))
    for head in heads_of_body(BASE_BODY)[1:]:  # every class a base checkpoint serves
        _, info = MODEL_CLASSES[head].from_pretrained(REPO, output_loading_info=True)
        assert info.source.endswith(f"snapshots/{COMMIT}/model.safetensors") and not info.unexpected_keys
    tokenizer = FunnelTokenizer.from_pretrained(REPO)
    assert tokenizer.get_vocab() == FunnelTokenizer.from_pretrained(source_dir(tmp_path, source)).get_vocab()
    assert FunnelConfig.from_json_file(resolve_pretrained(REPO, parts=(CONFIG,)) / "config.json").d_model == 16


def test_config_and_convert_take_a_repo_id(offline_cache, tmp_path, source):
    assert FunnelConfig.from_pretrained(REPO) == FunnelConfig.from_pretrained(source_dir(tmp_path, source))
    assert main(["convert", REPO, str(tmp_path / "converted")]) == 0
    written = sorted(p.name for p in (tmp_path / "converted").iterdir())
    assert written == ["config.json", "model.safetensors", "vocab.txt"]  # the tokenizer travels along
    vocab_size = FunnelConfig.from_pretrained(REPO).vocab_size
    np.testing.assert_array_equal(hidden(FunnelBaseModel.from_pretrained(tmp_path / "converted"), vocab_size),
                                  hidden(FunnelBaseModel.from_pretrained(REPO), vocab_size))


def test_hf_home_is_read_at_call_time(tmp_path, monkeypatch, source):
    lay_out_cache(tmp_path / "home" / "hub", REPO, source)
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert resolve_pretrained(REPO) == tmp_path / "home" / "hub" / f"models--tiny-org--tiny-funnel/snapshots/{COMMIT}"


def test_a_local_path_wins_over_a_repo_id(offline_cache, tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "tiny-org" / "tiny-funnel"
    local.mkdir(parents=True)
    assert resolve_pretrained(REPO) == Path(REPO)  # relative: the directory in the working directory
    assert resolve_pretrained("tiny-org/missing.json") == Path("tiny-org/missing.json")  # a file name, not a repo


def test_offline_and_not_cached_says_so(offline_cache, tmp_path):
    with pytest.raises(MissingFileError, match=rf"tiny-org/other: no such local path, and config.json is not in "
                                               rf"the cache at {offline_cache} and HF_HUB_OFFLINE is set"):
        FunnelBaseModel.from_pretrained("tiny-org/other")
    with pytest.raises(MissingFileError, match="preset name.*FunnelConfig.from_preset"):
        FunnelBaseModel.from_pretrained("funnel-transformer/small")
    with pytest.raises(MissingFileError, match="local_files_only=True"):
        FunnelTokenizer.from_pretrained("tiny-org/other", local_files_only=True)


def test_compare_accepts_a_hub_name(offline_cache, capsys):
    assert main(["compare", REPO, "--seq-len", "8"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {REPO}" in out and "FunnelBaseModel (from_pretrained)" in out
    assert main(["compare", "tiny-org/other", "--seq-len", "8"]) == 2
    assert "not in the cache at" in capsys.readouterr().err


def write_rows(path: Path, n: int = 24) -> Path:
    words = ["good", "bad", "great", "awful", "the", "movie", "plot", "was"]
    rng = np.random.default_rng(0)
    lines = ["text,label"] + [f"{' '.join(rng.choice(words, 5))},{'pos' if i % 2 else 'neg'}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def classify(tmp_path: Path, model: str, out: Path, *extra: str) -> int:
    return main(["train", "classify", "--train-file", str(write_rows(tmp_path / "train.csv")), "--text-columns",
                 "text", "--label-column", "label", "--model", model, "--out", str(out), "--max-steps", "2",
                 "--batch-size", "4", "--max-seq-length", "16", "--learning-rate", "1e-5", "--no-progress",
                 "--seed", "0", *extra])


def test_cli_trains_from_a_cached_hub_name(offline_cache, tmp_path, source, capsys):
    out = tmp_path / "run"
    assert classify(tmp_path, REPO, out) == 0
    assert (out / "best" / "vocab.txt").read_bytes() == source["vocab.txt"]  # the repo's tokenizer
    trained = FunnelForSequenceClassification.from_pretrained(out / "best")
    start = FunnelBaseModel.from_pretrained(source_dir(tmp_path, source))
    key = "embeddings.word_embeddings.weight"
    # Two steps at lr 1e-5 move a weight by ~2e-5; random initial weights would differ by ~1.
    np.testing.assert_allclose(trained.funnel.state_dict()[key].numpy(), start.state_dict()[key].numpy(), atol=1e-3)

    config = tmp_path / "tiny.json"  # --tokenizer as a hub name, for a model trained from scratch
    config.write_text(json.dumps({"model_type": "funnel", **tiny()}))
    assert classify(tmp_path, str(config), tmp_path / "scratch", "--init", "random", "--tokenizer", REPO) == 0
    assert (tmp_path / "scratch" / "best" / "vocab.txt").read_bytes() == source["vocab.txt"]


# ---------------------------------------------------------------------------- (2) a stand-in hub on 127.0.0.1
def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class FakeHub:
    """Answers `HEAD/GET /{org}/{name}/resolve/{revision}/{file}` as the hub does (X-Repo-Commit, ETag: the LFS
    sha256 for weights, the git blob id for other files; X-Error-Code on 401/404), records every request, and
    stops itself after `max_requests` or `lifetime` seconds."""

    def __init__(self, repos: dict[str, dict[str, tuple[str, dict[str, bytes]]]], max_requests: int = 80,
                 lifetime: float = 60.0) -> None:
        self.repos = repos  # repo -> revision -> (commit, files)
        self.requests: list[tuple[str, str]] = []
        self.truncate: dict[str, str] = {}  # file -> "body" (GET shorter than announced) | "both" (HEAD too)
        self.max_requests = max_requests
        hub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_HEAD(self):
                hub.answer(self, with_body=False)

            def do_GET(self):
                hub.answer(self, with_body=True)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime, self.stop)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.thread.join(timeout=5)

    def stop(self) -> None:
        self.timer.cancel()
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def files_requested(self, method: str | None = None) -> list[str]:
        return [path.rsplit("/", 1)[1] for m, path in self.requests if method in (None, m)]

    def answer(self, handler: BaseHTTPRequestHandler, with_body: bool) -> None:
        self.requests.append((handler.command, handler.path))
        if len(self.requests) >= self.max_requests:
            self.stop()
        parts = handler.path.split("/")
        if len(parts) != 6 or parts[3] != "resolve":
            return self.send(handler, 404, {}, b"")
        repo, revision, name = f"{parts[1]}/{parts[2]}", parts[4], parts[5]
        if repo not in self.repos:
            return self.send(handler, 401, {"X-Error-Code": "RepoNotFound"}, b"")
        revisions = self.repos[repo]
        by_commit = {commit: (commit, files) for commit, files in revisions.values()}
        if revision not in revisions and revision not in by_commit:
            return self.send(handler, 404, {"X-Error-Code": "RevisionNotFound"}, b"")
        commit, files = revisions.get(revision) or by_commit[revision]
        if name not in files:
            return self.send(handler, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b"")
        data = files[name]
        lfs = name.endswith((".safetensors", ".bin", ".h5"))
        etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_id(data)
        mode = self.truncate.get(name)
        body = data[: len(data) // 2] if mode and (with_body or mode == "both") else data
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"'}
        if mode == "body" and not with_body:
            headers["Content-Length"] = str(len(data))  # announced in full, delivered short
        self.send(handler, 200, headers, body if with_body else b"", length=len(body))

    @staticmethod
    def send(handler, status: int, headers: dict[str, str], body: bytes, length: int | None = None) -> None:
        handler.send_response(status)
        headers = {"Content-Length": str(len(body) if length is None else length), **headers}
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(body)


@pytest.fixture
def online(tmp_path, monkeypatch):
    cache = tmp_path / "downloads"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    return cache


def hub_repos(source: dict[str, bytes]) -> dict[str, dict[str, tuple[str, dict[str, bytes]]]]:
    v1_config = {**json.loads(source["config.json"]), "hidden_dropout": 0.25}
    bert = {**json.loads(source["config.json"]), "model_type": "bert"}
    return {
        REPO: {"main": (COMMIT, {**source, "pytorch_model.bin": b"not used", "tf_model.h5": b"never",
                                 "tokenizer_config.json": b'{"do_lower_case": true}'}),
               "v1": (COMMIT_V1, {**source, "config.json": json.dumps(v1_config).encode()})},
        "tiny-org/bin-only": {"main": (COMMIT, {"config.json": source["config.json"],
                                                "pytorch_model.bin": b"pickle bytes", "tf_model.h5": b"x"})},
        "tiny-org/tf-only": {"main": (COMMIT, {"config.json": source["config.json"], "tf_model.h5": b"x"})},
        "tiny-org/bert": {"main": (COMMIT, {"config.json": json.dumps(bert).encode(),
                                            "model.safetensors": source["model.safetensors"]})},
    }


def test_download_fetches_only_the_needed_files_then_uses_the_cache(online, monkeypatch, tmp_path, source):
    with FakeHub(hub_repos(source)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        model = FunnelBaseModel.from_pretrained(REPO)
        assert hub.files_requested("GET") == ["config.json", "model.safetensors"]  # one weights format
        tokenizer = FunnelTokenizer.from_pretrained(REPO)
        assert set(hub.files_requested("GET")[2:]) == {"vocab.txt", "tokenizer_config.json"}
        assert "pytorch_model.bin" not in hub.files_requested() and "tf_model.h5" not in hub.files_requested()
        seen = len(hub.requests)
        FunnelBaseModel.from_pretrained(REPO)
        FunnelTokenizer.from_pretrained(REPO)
        assert len(hub.requests) == seen  # everything (including the absent tokenizer.json) known from the cache
        assert resolve_pretrained("tiny-org/bin-only").joinpath("pytorch_model.bin").read_bytes() == b"pickle bytes"
        assert hub.files_requested()[seen:] == ["config.json", "config.json", "model.safetensors",
                                                "model.safetensors.index.json", "pytorch_model.bin",
                                                "pytorch_model.bin"]  # HEAD+GET, HEAD 404 x2, HEAD+GET
    expected = FunnelBaseModel.from_pretrained(source_dir(tmp_path, source))
    np.testing.assert_array_equal(hidden(model, len(tokenizer)), hidden(expected, len(tokenizer)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the server is gone: the cache alone serves
    assert resolve_pretrained(REPO, parts=(CONFIG, WEIGHTS, TOKENIZER)).name == COMMIT


def test_revision_is_followed_and_pinned(online, monkeypatch, source, tmp_path):
    with FakeHub(hub_repos(source)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        model = FunnelBaseModel.from_pretrained(REPO, revision="v1")
        assert model.config.hidden_dropout == 0.25
        paths = [path for _, path in hub.requests]
        assert paths[0] == f"/{REPO}/resolve/v1/config.json"
        assert all(f"/resolve/{COMMIT_V1}/" in path for path in paths[2:])  # the rest from the same commit
        assert FunnelBaseModel.from_pretrained(REPO).config.hidden_dropout == 0.1  # main: another commit
        with pytest.raises(InputError, match=rf"{REPO}: no revision 'nope' \(branch, tag or commit\)"):
            FunnelBaseModel.from_pretrained(REPO, revision="nope")
        assert classify(tmp_path, REPO, tmp_path / "run", "--revision", "v1") == 0
        assert json.loads((tmp_path / "run" / "best" / "config.json").read_text())["hidden_dropout"] == 0.25


def test_sharded_safetensors_are_fetched_with_their_shards(online, monkeypatch, tmp_path, source):
    from safetensors.numpy import load, save

    tensors = load(source["model.safetensors"])
    keys = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    files = {name: save({k: tensors[k] for k in part}, metadata={"format": "pt"}) for name, part in halves.items()}
    files["model.safetensors.index.json"] = json.dumps(
        {"weight_map": {k: name for name, part in halves.items() for k in part}}).encode()
    files.update({"config.json": source["config.json"], "pytorch_model.bin": b"not used"})
    with FakeHub({"tiny-org/sharded": {"main": (COMMIT, files)}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        model = FunnelBaseModel.from_pretrained("tiny-org/sharded")
        assert hub.files_requested("GET") == ["config.json", "model.safetensors.index.json", *halves]
    expected = FunnelBaseModel.from_pretrained(source_dir(tmp_path, source))
    vocab_size = model.config.vocab_size
    np.testing.assert_array_equal(hidden(model, vocab_size), hidden(expected, vocab_size))


def test_hub_errors_name_the_repo_and_the_fix(online, monkeypatch, source, tmp_path, capsys):
    with FakeHub(hub_repos(source)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(MissingFileError, match="tiny-org/nothing: no such local path, and no model repository"):
            FunnelBaseModel.from_pretrained("tiny-org/nothing")
        with pytest.raises(InputError, match="tiny-org/bert: its config.json says model_type 'bert'.*not a Funnel"):
            FunnelBaseModel.from_pretrained("tiny-org/bert")
        assert "model.safetensors" not in hub.files_requested()  # refused before any weights were fetched
        with pytest.raises(MissingFileError, match="tiny-org/tf-only: no weights in a format paddlefunnel reads"):
            FunnelBaseModel.from_pretrained("tiny-org/tf-only")
        assert "tf_model.h5" not in hub.files_requested()
        out = tmp_path / "run"
        assert classify(tmp_path, "tiny-org/nothing", out) == 2
        assert "no model repository" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", lambda seconds: None)  # its 23 s of retries
    with pytest.raises(MissingFileError, match="not in the cache at .* cannot be reached"):
        FunnelBaseModel.from_pretrained("tiny-org/unreachable")


@pytest.mark.parametrize("mode", ["body", "both"])
def test_a_truncated_download_is_never_kept(online, monkeypatch, source, mode):
    """"body": fewer bytes than announced (huggingface_hub's size check); "both": HEAD and GET agree on the short
    size, so only the hash (the ETag) tells. Either way nothing bad stays in the cache, and a rerun succeeds."""
    with FakeHub(hub_repos(source)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.truncate["model.safetensors"] = mode
        with pytest.raises(MissingFileError, match=f"{REPO}: .*model.safetensors.*run again"):
            FunnelBaseModel.from_pretrained(REPO)
        repo_cache = online / "models--tiny-org--tiny-funnel"
        blobs = {p.name: p.stat().st_size for p in (repo_cache / "blobs").iterdir()}
        assert hashlib.sha256(source["model.safetensors"]).hexdigest() not in blobs
        assert all(size < 10_000 for size in blobs.values())  # only config.json; no partial weights
        assert not list(repo_cache.rglob("*.incomplete")) and not list(repo_cache.rglob("model.safetensors"))
        hub.truncate.clear()  # the server is fixed
        model = FunnelBaseModel.from_pretrained(REPO)
    weights = repo_cache / "snapshots" / COMMIT / "model.safetensors"
    assert weights.read_bytes() == source["model.safetensors"]
    assert model.config.d_model == 16


# -------------------------------------------------------------------------- (3) random init is explicit
TINY_PRESET = {"model_type": "funnel", "block_sizes": [1, 1], "d_model": 16, "n_head": 2, "d_head": 8,
               "d_inner": 32, "num_decoder_layers": 1}


def test_init_random_from_a_preset_that_is_also_a_hub_name(tmp_path, monkeypatch, capsys):
    """--init random: the preset table, offline (here a tiny stand-in for it, to keep the test fast); without it
    the same name means the pretrained hub model, which offline and uncached is a clear error."""
    import paddlefunnel.config

    real = paddlefunnel.config._load_presets()
    monkeypatch.setattr(paddlefunnel.config, "_load_presets", lambda: {**real, "funnel-transformer/small": TINY_PRESET})
    out = tmp_path / "run"
    assert classify(tmp_path, "funnel-transformer/small", out, "--init", "random", "--train-vocab", "60") == 0
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["block_sizes"] == [1, 1] and config["d_model"] == 16
    assert "randomly initialised" in capsys.readouterr().err

    out = tmp_path / "run2"
    assert classify(tmp_path, "funnel-transformer/small", out, "--train-vocab", "60") == 2
    err = capsys.readouterr().err
    assert "funnel-transformer/small: no such local path, and config.json is not in the cache at" in err
    assert "HF_HUB_OFFLINE is set" in err
    assert "add --init random" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_preset_or_config_without_init_random_says_to_add_it(tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_PRESET))
    for model in ("small", str(config)):
        out = tmp_path / "run"
        assert classify(tmp_path, model, out, "--train-vocab", "60") == 2
        err = capsys.readouterr().err
        assert "add --init random" in err and not out.exists()
    with pytest.raises(InputError, match="init must be one of pretrained, random"):
        from paddlefunnel.tasks.common import describe_model_argument

        describe_model_argument("small", init="scratch")


def test_init_random_uses_the_config_alone_of_a_cached_hub_model(offline_cache, tmp_path):
    from paddlefunnel.tasks.common import build_model

    tokenizer = FunnelTokenizer.from_pretrained(REPO)
    pretrained = build_model(FunnelForSequenceClassification, REPO, tokenizer, seed=0, num_labels=2)
    scratch = build_model(FunnelForSequenceClassification, REPO, tokenizer, seed=0, init="random", num_labels=2)
    assert scratch.config.d_model == pretrained.config.d_model == 16
    key = "embeddings.word_embeddings.weight"
    assert not np.allclose(scratch.funnel.state_dict()[key].numpy(), pretrained.funnel.state_dict()[key].numpy())
