import json
import os
import stat

import pytest

from paddlefunnel.io_utils import atomic_directory, atomic_write_text, read_json_object


def test_read_json_object_names_file_line_column_and_expectation(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(ValueError, match=r"settings\.json: not valid JSON \(line 4, column 1: Expecting value\)"):
        read_json_object(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"settings\.json: expected a JSON object, got list"):
        read_json_object(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match=r"settings\.json: not UTF-8 text \(byte 7\)"):
        read_json_object(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.json: no such recipe file"):
        read_json_object(tmp_path / "missing.json", "recipe file")
    path.write_text(json.dumps({"a": [1, {"b": None}]}))
    assert read_json_object(path) == {"a": [1, {"b": None}]}


def test_atomic_write_leaves_nothing_behind_when_it_fails(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")
    with pytest.raises(TypeError):
        atomic_write_text(target, object())  # not text: the write fails half way
    assert target.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_outputs_get_the_modes_of_plain_writes(tmp_path):
    """Staging with mkstemp/mkdtemp must not leave outputs private (0600/0700): they get what open()/mkdir() give."""
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.json", "{}")
        with atomic_directory(tmp_path / "outdir") as staging:
            (staging / "a.txt").write_text("a")
        plain_dir = tmp_path / "plain"
        plain_dir.mkdir()
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(tmp_path / "out.json") == mode(tmp_path / "plain.txt") == 0o644
    assert mode(tmp_path / "outdir") == mode(plain_dir) == 0o755
