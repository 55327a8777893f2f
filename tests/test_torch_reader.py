"""The numpy-only reader of torch.save checkpoints (checkpoint/torch_pickle.py): every dtype and view a state
dict holds read back bit-exactly, a real Funnel `pytorch_model.bin` loaded without torch, and bad or malicious
files refused with a WeightsError naming the file. torch is used here only to write files and to compare."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from model_utils import tiny
from paddlefunnel import FunnelForMaskedLM, WeightsError
from paddlefunnel.checkpoint import read_checkpoint
from paddlefunnel.checkpoint.torch_pickle import LEGACY_FORMAT, ZIP_FORMAT, read_torch_zip, torch_save_format
from paddlefunnel.parity import make_reference_model

SPECIALS = [0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-30, 3.0e38]


def _expected(tensor: torch.Tensor) -> np.ndarray:
    """What the reader should give for `tensor`: its values, bfloat16 widened to float32."""
    tensor = tensor.detach().resolve_neg().resolve_conj()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).contiguous().numpy()


def _assert_bit_exact(got: dict[str, np.ndarray], state: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(state)
    for key, tensor in state.items():
        want = _expected(tensor)
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        assert got[key].tobytes() == want.tobytes(), key  # bytes, so -0.0 and NaN payloads count too


def _save(state, path: Path, **kwargs) -> Path:
    torch.save(state, path, **kwargs)
    return path


def test_every_dtype_reads_back_bit_exact(tmp_path):
    generator = torch.Generator().manual_seed(0)
    floats = torch.cat([torch.tensor(SPECIALS), torch.randn(50, generator=generator) * 100])
    state = {
        "fp32": floats.reshape(59, 1),
        "fp16": floats.half(),
        "bf16": floats.bfloat16().reshape(1, 59),
        "fp64": floats.double() / 3,
        "int64": torch.tensor([0, -1, 2**62, -(2**63)]),
        "int32": torch.tensor([7, -(2**31)], dtype=torch.int32),
        "uint8": torch.arange(0, 256, 51, dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "empty": torch.zeros(0, 3),
    }
    path = _save(state, tmp_path / "dtypes.bin")
    assert torch_save_format(path) == ZIP_FORMAT
    got = read_torch_zip(path)
    _assert_bit_exact(got, state)
    assert got["bf16"].dtype == np.float32 and np.isnan(got["bf16"][0, 6]) and got["bf16"][0, 4] == np.inf
    assert all(value.flags.writeable for value in got.values())


def test_shared_storages_views_and_scalars(tmp_path):
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    state = OrderedDict(
        base=base,
        tied=base.detach().view(6, 8),  # another tensor object on the same storage, as tied weights are
        transposed=base.t(),
        sliced=base[2:5, 3:7],  # offset into the storage, and strides of a non-contiguous view
        strided=base[::2, ::3],
        tail=base.reshape(-1)[40:],
        scalar=torch.tensor(2.5),
        bf16_scalar=torch.tensor(-1.75, dtype=torch.bfloat16),
        negated=torch.arange(3.0)._neg_view(),  # saved as metadata {"neg": True} on the un-negated storage
        parameter=weight,
    )
    state["with_attribute"] = torch.ones(2)
    state["with_attribute"].note = "kept by torch as Python state"  # pickled through _rebuild_from_type_v2
    path = _save(state, tmp_path / "views.pt")
    got = read_torch_zip(path)
    _assert_bit_exact(got, state)
    assert got["scalar"].shape == () and got["bf16_scalar"].shape == ()
    got["base"][0, 0] = 100.0  # arrays are the caller's own: changing one weight leaves its twin alone
    assert got["tied"][0, 0] == 0.0 and got["transposed"][0, 0] == 0.0


def test_big_endian_archive_is_byteswapped(tmp_path):
    state = {"fp32": torch.randn(3, 2), "fp16": torch.randn(4).half(), "bf16": torch.randn(5).bfloat16(),
             "int64": torch.arange(-3, 3), "bool": torch.tensor([True, False, True])}
    little = _save(state, tmp_path / "little.bin")
    itemsizes = [tensor.element_size() for tensor in state.values()]  # storages are keyed 0, 1, ... in order
    big = tmp_path / "big.bin"
    with zipfile.ZipFile(little) as source, zipfile.ZipFile(big, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            folder, _, name = info.filename.partition("/")
            if name == "byteorder":
                data = b"big"
            elif name.startswith("data/"):
                itemsize = itemsizes[int(name.removeprefix("data/"))]
                data = np.frombuffer(data, dtype=f"<u{itemsize}" if itemsize > 1 else "u1").byteswap().tobytes()
            target.writestr(info.filename, data)
    _assert_bit_exact(read_torch_zip(big), state)


def test_recompressed_archive_reads(tmp_path):
    # torch stores records uncompressed; an archive someone re-zipped with deflate must read the same.
    state = {"w": torch.randn(10, 3), "b": torch.randn(3).half()}
    stored = _save(state, tmp_path / "stored.bin")
    deflated = tmp_path / "deflated.bin"
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    _assert_bit_exact(read_torch_zip(deflated), state)


def test_funnel_pytorch_model_bin_loads_like_safetensors_and_without_torch_load(tmp_path, monkeypatch):
    reference = make_reference_model("FunnelForMaskedLM", tiny())
    assert reference.state_dict()["lm_head.weight"].data_ptr() == \
        reference.state_dict()["funnel.embeddings.word_embeddings.weight"].data_ptr()  # a shared storage
    reference.save_pretrained(tmp_path / "safetensors")
    # transformers 5 writes safetensors only; pytorch_model.bin is what its earlier save_pretrained(...,
    # safe_serialization=False) wrote: torch.save of the state dict, tied weights included.
    reference.config.save_pretrained(tmp_path / "bin")
    torch.save(reference.state_dict(), tmp_path / "bin" / "pytorch_model.bin")

    def no_torch_load(*args, **kwargs):
        raise AssertionError("the zip format must be read by paddlefunnel's own reader, not torch.load")

    monkeypatch.setattr(torch, "load", no_torch_load)
    from_bin, info = FunnelForMaskedLM.from_pretrained(tmp_path / "bin", output_loading_info=True)
    assert info.missing_keys == [] and info.unexpected_keys == [] and info.layout == "pt"
    from_safetensors = FunnelForMaskedLM.from_pretrained(tmp_path / "safetensors")
    expected = from_safetensors.state_dict()
    assert sorted(from_bin.state_dict()) == sorted(expected)
    for key, value in from_bin.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)


NO_TORCH_SCRIPT = """
import json, sys
sys.modules["torch"] = None  # `import torch` now raises ImportError, as on a runtime-only install
from paddlefunnel import WeightsError
from paddlefunnel.checkpoint import read_checkpoint
checkpoint = read_checkpoint(sys.argv[1])
result = {"sums": {k: float(v.astype("float64").sum()) for k, v in checkpoint.tensors.items()},
          "dtypes": {k: str(v.dtype) for k, v in checkpoint.tensors.items()}}
try:
    read_checkpoint(sys.argv[2])
except WeightsError as err:
    result["legacy_error"] = str(err)
result["torch_loaded"] = sys.modules["torch"] is not None
print(json.dumps(result))
"""


def test_reads_bin_with_torch_absent(tmp_path):
    state = {"w": torch.randn(8, 4), "b": torch.randn(4).bfloat16(), "n": torch.arange(5)}
    modern = _save(state, tmp_path / "pytorch_model.bin")
    legacy = _save(state, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    run = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT, str(modern), str(legacy)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["torch_loaded"] is False
    assert result["dtypes"] == {"w": "float32", "b": "float32", "n": "int64"}
    for key, tensor in state.items():
        assert result["sums"][key] == pytest.approx(float(_expected(tensor).astype(np.float64).sum()), abs=1e-9)
    assert str(legacy) in result["legacy_error"] and "legacy format" in result["legacy_error"]


def test_legacy_format_needs_torch_and_says_how_to_convert(tmp_path, monkeypatch):
    state = {"w": torch.randn(3, 3)}
    legacy = _save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert torch_save_format(legacy) == LEGACY_FORMAT
    np.testing.assert_array_equal(read_checkpoint(legacy).tensors["w"], state["w"].numpy())  # torch installed
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(WeightsError) as caught:
        read_checkpoint(legacy)
    message = str(caught.value)
    assert str(legacy) in message and "legacy format" in message and "torch < 1.6" in message
    assert "pip install 'paddlefunnel[convert]'" in message and "torch.save(torch.load(" in message


# --------------------------------------------------------------------------------------- hostile files
class _Call:
    """Pickles as `function(*args)` (a GLOBAL and a REDUCE), which is how a malicious pickle runs code."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


class _StorageRef:
    def __init__(self, storage_type, key: str, numel: int):
        self.pid = ("storage", storage_type, key, "cpu", numel)


class _ArchivePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _StorageRef) else None


def _write_archive(path: Path, obj, records: dict[str, bytes] | None = None, protocol: int = 2) -> Path:
    """A zip laid out as torch.save lays it out, with `obj` as its data.pkl (so tests can write any pickle)."""
    buffer = io.BytesIO()
    _ArchivePickler(buffer, protocol=protocol).dump(obj)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def _tensor(storage: _StorageRef, offset: int, size: tuple, stride: tuple) -> _Call:
    return _Call(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, OrderedDict())


@pytest.mark.parametrize("payload, refused", [
    (lambda marker: _Call(os.system, f"touch {marker}"), r"refusing to load (posix|os)\.system"),
    (lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"), r"refusing to load (__builtin__|builtins)\.eval"),
    # hidden where a tensor's storage should be, inside an allowed call
    (lambda marker: _Call(torch._utils._rebuild_tensor_v2, _Call(exec, f"open({str(marker)!r}, 'w')"), 0, (1,),
                          (1,), False, OrderedDict()), r"refusing to load (__builtin__|builtins)\.exec"),
])
@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL and STACK_GLOBAL both reach the allow-list
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, refused, protocol):
    marker = tmp_path / "pwned"
    path = _write_archive(tmp_path / "pytorch_model.bin", {"weight": payload(marker)}, {"0": b"\0" * 4}, protocol)
    with pytest.raises(WeightsError, match=refused) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value)
    assert not marker.exists()


def test_stand_ins_cannot_be_turned_into_calls(tmp_path):
    # A storage type is a marker, not a class: calling it (REDUCE) fails instead of building anything.
    path = _write_archive(tmp_path / "call.bin", {"w": _Call(torch.FloatStorage, 10)})
    with pytest.raises(WeightsError, match=r"call\.bin: not a readable PyTorch state dict \(TypeError"):
        read_torch_zip(path)


@pytest.mark.parametrize("name, build, message", [
    ("out_of_bounds", lambda: {"w": _tensor(_StorageRef(torch.FloatStorage, "0", 4), 2, (3,), (1,))},
     r"reaches element 4 of storage '0', which holds 4"),
    ("short_record", lambda: {"w": _tensor(_StorageRef(torch.FloatStorage, "0", 8), 0, (8,), (1,))},
     r"record archive/data/0 holds 16 bytes, the tensor needs 32"),
    ("missing_record", lambda: {"w": _tensor(_StorageRef(torch.FloatStorage, "7", 4), 0, (4,), (1,))},
     r"record archive/data/7 is missing"),
    ("bad_view", lambda: {"w": _tensor(_StorageRef(torch.FloatStorage, "0", 4), 0, (2, 2), (1,))},
     r"malformed view"),
    ("training_checkpoint", lambda: {"model": {"w": _tensor(_StorageRef(torch.FloatStorage, "0", 4), 0, (4,), (1,))},
                                     "epoch": 3},
     r"entry 'model' is a dict, not a tensor"),
    ("not_a_dict", lambda: [1, 2], r"expected a state dict \(a dict of tensors\), got list"),
])
def test_malformed_state_dicts_name_file_and_problem(tmp_path, name, build, message):
    path = _write_archive(tmp_path / f"{name}.bin", build(), {"0": b"\0" * 16})
    with pytest.raises(WeightsError, match=message) as caught:
        read_checkpoint(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    good = _save({"w": torch.randn(64, 64)}, tmp_path / "good.bin")
    data = good.read_bytes()

    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"truncated\.bin: not a complete zip archive"):
        read_checkpoint(truncated)

    flipped = bytearray(data)
    with zipfile.ZipFile(good) as archive:
        record = archive.getinfo("good/data/0")
    flipped[record.header_offset + 200] ^= 0xFF  # inside the tensor's bytes (64-byte aligned after the header)
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(WeightsError, match=r"corrupt\.bin: record good/data/0 fails its CRC check"):
        read_checkpoint(corrupt)

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(WeightsError, match=r"garbage\.bin: not a PyTorch checkpoint"):
        read_checkpoint(garbage)

    no_pickle = tmp_path / "no_pickle.bin"
    with zipfile.ZipFile(no_pickle, "w") as archive:
        archive.writestr("something/else.txt", "hello")
    with pytest.raises(WeightsError, match=r"no_pickle\.bin: a zip archive with no <archive>/data\.pkl"):
        read_checkpoint(no_pickle)
