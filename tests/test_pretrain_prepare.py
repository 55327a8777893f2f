"""`paddlefunnel pretrain prepare`: reading, packing, shards, re-runs and bad input, on corpora written here."""

import gzip
import json
import random
import string
from pathlib import Path

import numpy as np
import pytest

from paddlefunnel.cli import main
from paddlefunnel.errors import DataFormatError, InputError, MissingFileError, OutputExistsError
from paddlefunnel.pretraining import PreparedCorpus, prepare_corpus, tokenizer_fingerprint
from paddlefunnel.pretraining import prepare as prepare_module
from paddlefunnel.pretraining.builtin import builtin_documents, prose_documents, write_builtin_corpus
from paddlefunnel.pretraining.shards import MANIFEST_FILE
from paddlefunnel.tokenizer import FunnelTokenizer

WORDS = ("the", "river", "of", "avaria", "is", "long", "cold", "and", "a", "heron", "flew", "over", "town", "hall")
SPECIALS = ["<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "<s>", "</s>"]
L = 16


def _vocab_dir(path: Path, words=WORDS, specials=SPECIALS) -> Path:
    letters = list(string.ascii_lowercase)
    tokens = specials + list(words) + [c for c in letters if c not in words] + ["##" + c for c in letters] + ["."]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tokenizer(tmp_path):
    return FunnelTokenizer.from_pretrained(_vocab_dir(tmp_path / "vocab"))


def _corpus_text(n_docs: int = 12, seed: int = 0) -> str:
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) + " ." for _ in
                     range(rng.randint(1, 5))]
        docs.append("\n".join(sentences))
    return "\n\n".join(docs) + "\n"


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(_corpus_text(), encoding="utf-8")
    return path


def _all_rows(data_dir, split="train"):
    corpus = PreparedCorpus.open(data_dir)
    part = corpus.split(split)
    return part.arrays(range(len(part))), part.rows(range(len(part)))[1]


def _text_ids(tokenizer, path):
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i for ids in tokenizer(lines, add_special_tokens=False)["input_ids"] for i in ids]


def test_rows_have_the_pair_layout_the_tokenizer_gives(tokenizer, corpus, tmp_path):
    prepare_corpus([corpus], tokenizer, L, tmp_path / "data", eval_examples=0, show_progress=False)
    arrays, segments = _all_rows(tmp_path / "data")
    assert arrays["input_ids"].shape[1] == L and len(arrays["input_ids"]) > 3
    for ids, types, mask, (len_a, len_b) in zip(arrays["input_ids"], arrays["token_type_ids"],
                                                arrays["attention_mask"], segments):
        n = len_a + len_b + 3
        assert len_a >= 1 and len_b >= 1 and ids[0] == tokenizer.cls_token_id
        assert ids[1 + len_a] == tokenizer.sep_token_id and ids[n - 1] == tokenizer.sep_token_id
        assert list(mask) == [1] * n + [0] * (L - n)
        assert all(ids[n:] == tokenizer.pad_token_id)
        # the tokenizer's own pair encoding of texts with as many one-token words gives the same token types
        reference = tokenizer(" ".join(["a"] * len_a), " ".join(["a"] * len_b))
        assert list(types[:n]) == reference["token_type_ids"]
        assert all(types[n:] == 0)
    full = segments.sum(1) + 3 == L
    assert full[:-1].all(), "only the corpus's last example may be padded"


def test_no_token_is_lost_or_repeated(tokenizer, corpus, tmp_path):
    # documents kept in order (no shuffle buffer) and no eval split: the rows are the text, cut into windows
    ordered = prepare_corpus([corpus], tokenizer, L, tmp_path / "ordered", eval_examples=0,
                             shuffle_buffer_tokens=0, show_progress=False)
    arrays, segments = _all_rows(tmp_path / "ordered")
    stream = []
    for ids, (len_a, len_b) in zip(arrays["input_ids"], segments):
        assert len_a >= 1 and len_b >= 1
        stream += list(ids[1:1 + len_a]) + list(ids[2 + len_a:2 + len_a + len_b])
    text = _text_ids(tokenizer, corpus)
    assert ordered["counts"]["dropped_tokens"] in (0, 1)  # only a single-token rest is dropped
    assert stream == text[:len(text) - ordered["counts"]["dropped_tokens"]]
    # shuffled, with an eval split: the same tokens over both splits
    manifest = prepare_corpus([corpus], tokenizer, L, tmp_path / "shuffled", eval_examples=0.25,
                              shuffle_buffer_tokens=20, show_progress=False)
    tokens = []
    for split in ("train", "eval"):
        arrays, segments = _all_rows(tmp_path / "shuffled", split)
        for ids, (len_a, len_b) in zip(arrays["input_ids"], segments):
            tokens += list(ids[1:1 + len_a]) + list(ids[2 + len_a:2 + len_a + len_b])
    assert manifest["counts"]["text_tokens"] == len(tokens) + manifest["counts"]["dropped_tokens"]
    missing = sorted(_text_ids(tokenizer, corpus))
    for token in tokens:
        missing.remove(token)  # raises if a token appears more often than in the text
    assert len(missing) == manifest["counts"]["dropped_tokens"]
    assert manifest["splits"]["eval"] >= 1 and manifest["splits"]["train"] > manifest["splits"]["eval"]


def test_within_documents_cuts_each_document_alone(tokenizer, corpus, tmp_path):
    # documents in order: the rows are each document cut into windows by itself, its rest padded
    manifest = prepare_corpus([corpus], tokenizer, L, tmp_path / "data", eval_examples=0, shuffle_buffer_tokens=0,
                              within_documents=True, show_progress=False)
    arrays, segments = _all_rows(tmp_path / "data")
    rows = [list(ids[1:1 + a]) + list(ids[2 + a:2 + a + b]) for ids, (a, b) in zip(arrays["input_ids"], segments)]
    expected, dropped = [], 0
    for document in corpus.read_text(encoding="utf-8").split("\n\n"):
        ids = [i for line in tokenizer(document.split("\n"), add_special_tokens=False)["input_ids"] for i in line]
        windows = [ids[k:k + L - 3] for k in range(0, len(ids), L - 3)]
        if len(windows[-1]) == 1:
            dropped += 1
            windows.pop()
        expected += windows
    assert rows == expected
    assert manifest["counts"]["dropped_tokens"] == dropped
    assert manifest["counts"]["padding"] == sum(L - 3 - len(row) for row in rows) > 0
    assert manifest["settings"]["within_documents"] is True
    # the default stream crosses documents: fewer rows, padding only in the last one
    stream = prepare_corpus([corpus], tokenizer, L, tmp_path / "stream", eval_examples=0, shuffle_buffer_tokens=0,
                            show_progress=False)
    assert stream["splits"]["train"] < len(rows) and stream["counts"]["padding"] < L
    assert stream["settings"]["within_documents"] is False


def test_split_points_fall_on_sentence_boundaries_when_there_is_one(tokenizer, tmp_path):
    # every sentence is "a b ." (3 tokens): any window of 13 tokens holds a boundary, so B starts a sentence
    path = tmp_path / "c.txt"
    path.write_text("\n".join(["a b ."] * 60) + "\n", encoding="utf-8")
    prepare_corpus([path], tokenizer, L, tmp_path / "data", eval_examples=0, show_progress=False)
    arrays, segments = _all_rows(tmp_path / "data")
    a_id = tokenizer.convert_tokens_to_ids("a")
    for ids, (len_a, len_b) in zip(arrays["input_ids"], segments):
        if len_b:
            assert ids[2 + len_a] == a_id


def test_same_seed_same_bytes_other_seed_other_rows(tokenizer, corpus, tmp_path):
    for name, seed in (("one", 3), ("two", 3), ("three", 4)):
        prepare_corpus([corpus], tokenizer, L, tmp_path / name, seed=seed, shuffle_buffer_tokens=30,
                       show_progress=False)
    shards = sorted(p.name for p in (tmp_path / "one").glob("*.npy"))
    assert shards and shards == sorted(p.name for p in (tmp_path / "two").glob("*.npy"))
    for name in shards:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    first, _ = _all_rows(tmp_path / "one")
    other, _ = _all_rows(tmp_path / "three")
    assert first["input_ids"].shape != other["input_ids"].shape or (first["input_ids"] != other["input_ids"]).any()


def test_gz_input_gives_the_same_examples(tokenizer, corpus, tmp_path):
    packed = tmp_path / "corpus.txt.gz"
    packed.write_bytes(gzip.compress(corpus.read_bytes()))
    plain = prepare_corpus([corpus], tokenizer, L, tmp_path / "plain", show_progress=False)
    zipped = prepare_corpus([packed], tokenizer, L, tmp_path / "zipped", show_progress=False)
    assert zipped["splits"] == plain["splits"] and zipped["counts"] == plain["counts"]
    assert (_all_rows(tmp_path / "plain")[0]["input_ids"] == _all_rows(tmp_path / "zipped")[0]["input_ids"]).all()
    assert zipped["corpus"][0]["bytes"] == packed.stat().st_size
    again = prepare_corpus([packed], tokenizer, L, tmp_path / "zipped", show_progress=False)
    assert again["status"] == "unchanged"  # the hash taken while reading is the file's


def test_doc_per_file_makes_one_document_per_file(tokenizer, corpus, tmp_path):
    blocks = prepare_corpus([corpus, corpus], tokenizer, L, tmp_path / "blocks", show_progress=False)
    files = prepare_corpus([corpus, corpus], tokenizer, L, tmp_path / "files", doc_per_file=True,
                           show_progress=False)
    assert blocks["counts"]["documents"] == 24 and files["counts"]["documents"] == 2
    assert files["counts"]["text_tokens"] == blocks["counts"]["text_tokens"]


def test_not_utf8_names_file_line_and_byte_and_skip_counts(tokenizer, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"the river .\nthe \xff heron .\n\na town .\n")
    with pytest.raises(DataFormatError) as err:
        prepare_corpus([path], tokenizer, L, tmp_path / "data", show_progress=False)
    assert str(path) in str(err.value) and "line 2" in str(err.value)
    assert "byte 4 of the line, byte 16 of the file" in str(err.value)
    assert not (tmp_path / "data").exists()
    manifest = prepare_corpus([path], tokenizer, L, tmp_path / "data", skip_bad_lines=True, eval_examples=0,
                              show_progress=False)
    assert manifest["counts"]["bad_lines"] == 1
    kept = tokenizer("the river . a town .", add_special_tokens=False)["input_ids"]
    assert manifest["counts"]["text_tokens"] == len(kept)


def test_not_utf8_in_gz_names_the_offset_of_the_decompressed_text(tokenizer, tmp_path):
    path = tmp_path / "bad.txt.gz"
    path.write_bytes(gzip.compress(b"the river .\n\xc3( heron\n"))
    with pytest.raises(DataFormatError, match=r"line 2: not UTF-8 text \(byte 0 of the line, byte 12 of the "
                                              r"decompressed text"):
        prepare_corpus([path], tokenizer, L, tmp_path / "data", show_progress=False)


def test_empty_corpus_is_an_error(tokenizer, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no tokens"):
        prepare_corpus([path], tokenizer, L, tmp_path / "data", show_progress=False)
    assert not (tmp_path / "data").exists()
    with pytest.raises(MissingFileError):
        prepare_corpus([tmp_path / "missing.txt"], tokenizer, L, tmp_path / "data", show_progress=False)


def test_rerun_is_a_no_op_or_refused_or_overwritten(tokenizer, corpus, tmp_path):
    out = tmp_path / "data"
    first = prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    assert first["status"] == "prepared"
    stamp = (out / MANIFEST_FILE).stat().st_mtime_ns
    again = prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    assert again["status"] == "unchanged" and (out / MANIFEST_FILE).stat().st_mtime_ns == stamp
    assert prepare_corpus([corpus], tokenizer, L, out, overwrite=True, show_progress=False)["status"] == "prepared"
    with pytest.raises(OutputExistsError, match="--overwrite"):
        prepare_corpus([corpus], tokenizer, L, out, seed=1, show_progress=False)
    corpus.write_text(_corpus_text(seed=5), encoding="utf-8")  # same name, other content
    with pytest.raises(OutputExistsError):
        prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    replaced = prepare_corpus([corpus], tokenizer, L, out, overwrite=True, show_progress=False)
    assert replaced["status"] == "prepared"
    assert json.loads((out / MANIFEST_FILE).read_text())["corpus"] == replaced["corpus"] != first["corpus"]


def test_interrupted_prepare_leaves_nothing_complete(tokenizer, corpus, tmp_path, monkeypatch):
    out = tmp_path / "data"
    calls = []

    def failing_add(self, row, len_a, len_b):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C mid-way raises
        original(self, row, len_a, len_b)

    original = prepare_module.ShardWriter.add
    monkeypatch.setattr(prepare_module.ShardWriter, "add", failing_add)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "vocab"]  # no data dir, no staging
    monkeypatch.setattr(prepare_module.ShardWriter, "add", original)
    complete = prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    calls.clear()
    monkeypatch.setattr(prepare_module.ShardWriter, "add", failing_add)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus([corpus], tokenizer, L, out, seed=9, overwrite=True, show_progress=False)
    assert PreparedCorpus.open(out).manifest["corpus"] == complete["corpus"]  # the old one, intact
    assert PreparedCorpus.open(out).manifest["seed"] == 0


def test_open_detects_missing_manifest_and_corrupt_shards(tokenizer, corpus, tmp_path):
    out = tmp_path / "data"
    prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    shard = out / "train-00000.ids.npy"
    data = shard.read_bytes()
    shard.write_bytes(data[:-7])
    with pytest.raises(DataFormatError, match="train-00000.ids.npy: shard is .* bytes.*truncated"):
        PreparedCorpus.open(out)
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    shard.write_bytes(bytes(flipped))
    PreparedCorpus.open(out)  # same size and header: only the checksum can tell
    with pytest.raises(DataFormatError, match="train-00000.ids.npy: shard content does not match its sha256"):
        PreparedCorpus.open(out, verify_checksums=True)
    (out / MANIFEST_FILE).unlink()
    with pytest.raises(InputError, match="no manifest.json"):
        PreparedCorpus.open(out)
    with pytest.raises(MissingFileError):
        PreparedCorpus.open(tmp_path / "nowhere")


def test_check_compatible_refuses_other_tokenizer_length_and_no_mask(tokenizer, corpus, tmp_path):
    out = tmp_path / "data"
    prepare_corpus([corpus], tokenizer, L, out, show_progress=False)
    prepared = PreparedCorpus.open(out)
    reloaded = FunnelTokenizer.from_pretrained(tmp_path / "vocab")
    assert tokenizer_fingerprint(reloaded) == prepared.manifest["tokenizer_fingerprint"]
    prepared.check_compatible(reloaded, L)
    saved = tmp_path / "saved"
    tokenizer.save_pretrained(saved)
    prepared.check_compatible(FunnelTokenizer.from_pretrained(saved), L)  # the round trip keeps the fingerprint
    other = FunnelTokenizer.from_pretrained(_vocab_dir(tmp_path / "other", words=WORDS[:-1]))
    with pytest.raises(InputError, match="another tokenizer"):
        prepared.check_compatible(other, L)
    cased = FunnelTokenizer.from_pretrained(tmp_path / "vocab", do_lower_case=False)
    with pytest.raises(InputError, match="another tokenizer"):
        prepared.check_compatible(cased, L)
    with pytest.raises(InputError, match="max_seq_length 16.*asks for 32"):
        prepared.check_compatible(reloaded, 32)

    class NoMask:
        mask_token_id = None

    with pytest.raises(InputError, match="no mask token"):
        prepared.check_compatible(NoMask(), L)
    with pytest.raises(InputError, match="no mask token"):
        prepare_corpus([corpus], NoMask(), L, tmp_path / "nomask", show_progress=False)
    with pytest.raises(InputError, match="<mask>"):  # a vocabulary without <mask> does not even load
        FunnelTokenizer.from_pretrained(_vocab_dir(tmp_path / "lacking", specials=SPECIALS[:4] + SPECIALS[5:]))


def test_batch_gives_int64_tensors_of_the_asked_rows(tokenizer, corpus, tmp_path):
    prepare_corpus([corpus], tokenizer, L, tmp_path / "data", show_progress=False)
    split = PreparedCorpus.open(tmp_path / "data").split("train")
    batch = split.batch([2, 0])
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    for tensor in batch.values():
        assert tensor.shape == [2, L] and str(tensor.dtype).endswith("int64")
    assert (batch["input_ids"].numpy()[1] == split.arrays([0])["input_ids"][0]).all()
    with pytest.raises(IndexError):
        split.arrays([len(split)])


def test_builtin_corpus_is_deterministic_and_mixes_world_and_prose(tmp_path):
    one = write_builtin_corpus(tmp_path / "one.txt", size_bytes=60_000)
    two = write_builtin_corpus(tmp_path / "two.txt", size_bytes=60_000)
    other = write_builtin_corpus(tmp_path / "other.txt", size_bytes=60_000, seed=1)
    assert one.read_bytes() == two.read_bytes() != other.read_bytes()
    assert 60_000 <= one.stat().st_size < 62_000
    prose = {sentence for document in prose_documents() for sentence in document}
    for size in (60_000, 400_000):
        lines = [line for line in builtin_documents_text(size) if line]
        from_prose = sum(line in prose for line in lines)
        world_lines = [line for line in lines if line not in prose]
        assert 0 < from_prose < 0.2 * len(lines)  # both kinds, mostly the world
        assert any("avaria" in line for line in world_lines)


def builtin_documents_text(size):
    return [sentence for document in builtin_documents(size) for sentence in document]


def test_cli_prepare_summary_and_exit_codes(tokenizer, corpus, tmp_path, capsys):
    out = tmp_path / "data"
    args = ["pretrain", "prepare", "--corpus", str(corpus), "--tokenizer", str(tmp_path / "vocab"),
            "--max-seq-length", str(L), "--out", str(out), "--quiet"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "prepared" and summary["examples"]["train"] > 0
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "unchanged"
    assert main(args + ["--seed", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert main(args[:3] + [str(tmp_path / "missing.txt")] + args[4:] + ["--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.txt" in err[0]
    assert main(args + ["--overwrite", "--eval-examples", "1.5"]) == 2
    assert "fraction" in capsys.readouterr().err
    # --within-documents is another preparation: refused without --overwrite, then more padding
    assert main(args + ["--within-documents"]) == 2
    capsys.readouterr()
    assert main(args + ["--within-documents", "--overwrite"]) == 0
    within = json.loads(capsys.readouterr().out)
    assert within["padding_tokens"] > summary["padding_tokens"]
    assert json.loads((out / MANIFEST_FILE).read_text())["settings"]["within_documents"] is True


def test_cli_train_vocab_saves_the_tokenizer_it_used(corpus, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["pretrain", "prepare", "--corpus", str(corpus), "--train-vocab", "60", "--max-seq-length", "16",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    trained = FunnelTokenizer.from_pretrained(out / "tokenizer")
    assert summary["vocab_size"] == len(trained)
    PreparedCorpus.open(out).check_compatible(trained, 16)


def test_a_gz_that_is_not_gzip_is_named(tokenizer, tmp_path):
    path = tmp_path / "fake.txt.gz"
    path.write_text("the river .\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="fake.txt.gz: cannot read the compressed text"):
        prepare_corpus([path], tokenizer, L, tmp_path / "data", show_progress=False)


def test_leftovers_of_a_killed_prepare_are_removed_next_time(tokenizer, corpus, tmp_path):
    leftover = tmp_path / ".data.abcd1234.tmp"  # what a SIGKILL mid-way leaves: atomic_directory's staging
    leftover.mkdir()
    (leftover / "train-00000.ids.npy").write_bytes(b"half")
    prepare_corpus([corpus], tokenizer, L, tmp_path / "data", show_progress=False)
    assert not leftover.exists() and PreparedCorpus.open(tmp_path / "data").manifest["splits"]["train"] > 0


def test_a_single_token_rest_is_dropped_and_counted(tokenizer, tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a\n" * (L - 3 + 1), encoding="utf-8")  # one full window and one token more
    manifest = prepare_corpus([path], tokenizer, L, tmp_path / "data", eval_examples=0, show_progress=False)
    assert manifest["splits"]["train"] == 1 and manifest["counts"]["dropped_tokens"] == 1
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds a single token"):
        prepare_corpus([path], tokenizer, L, tmp_path / "one", show_progress=False)


def test_many_small_shards_read_back_like_one(tokenizer, corpus, tmp_path, monkeypatch):
    prepare_corpus([corpus], tokenizer, L, tmp_path / "one", eval_examples=3, show_progress=False)
    monkeypatch.setattr(prepare_module, "SHARD_TOKENS", 3 * L)  # three rows a shard
    prepare_corpus([corpus], tokenizer, L, tmp_path / "many", eval_examples=3, show_progress=False)
    assert len(list((tmp_path / "many").glob("train-*.ids.npy"))) > 2
    one, many = (PreparedCorpus.open(tmp_path / name).split("train") for name in ("one", "many"))
    order = np.random.default_rng(0).permutation(len(one))
    for key, value in one.arrays(order).items():
        assert (many.arrays(order)[key] == value).all()


def test_shuffle_buffer_never_holds_more_than_its_budget():
    rng = np.random.default_rng(0)
    shuffler = prepare_module.DocumentShuffler(100, rng)
    out = []
    for size in rng.integers(1, 40, size=200):
        document = prepare_module.TokenizedDocument(np.zeros(size, np.int32), np.ones(size, bool))
        out += list(shuffler.add(document))
        assert shuffler.tokens <= 100
    out += list(shuffler.drain())
    assert len(out) == 200 and shuffler.tokens == 0
