"""The legacy .pth reader: on the real wheel file, on a file we write, and on damaged files."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from ml_worker import build
from ml_worker.pth_reader import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    WeightsFileError,
    read_state_dict,
    read_verified,
    sha256_of,
)

LITE0 = build.WEIGHTS["efficientnet_lite0"]


@pytest.fixture(scope="module")
def wheel_state():
    return read_verified(LITE0.path(), LITE0.sha256)


def test_real_wheel_file_has_the_pinned_hash_and_every_tensor(wheel_state):
    assert sha256_of(LITE0.path()) == LITE0.sha256
    assert len(wheel_state) == 296
    assert sum(v.size for v in wheel_state.values()) == LITE0.parameters == 4_694_073
    assert wheel_state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert wheel_state["_blocks.1._depthwise_conv.weight"].shape == (96, 1, 3, 3)
    assert wheel_state["_fc.weight"].shape == (1000, 1280)
    assert wheel_state["_fc.weight"].dtype == np.float32
    assert wheel_state["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.isfinite(wheel_state["_fc.weight"]).all()


@pytest.mark.parametrize("name", sorted(build.WEIGHTS))
def test_every_wheel_has_its_pinned_hash_and_parameter_count(name):
    """Each variant's checkpoint (Lite1 and Lite2 have 386 tensors: 21 blocks against Lite0's 16)."""
    weights = build.WEIGHTS[name]
    state = read_verified(weights.path(), weights.sha256)
    assert sum(v.size for v in state.values()) == weights.parameters
    blocks = {key.split(".")[1] for key in state if key.startswith("_blocks.")}
    assert len(blocks) == (16 if name == "efficientnet_lite0" else 21)


def test_wrong_hash_is_refused_before_reading(tmp_path):
    with pytest.raises(WeightsFileError, match="does not match the pinned"):
        read_verified(LITE0.path(), "0" * 64)


# -- a legacy file written here, with the same layout torch.save(_use_new_zipfile_serialization=False) uses


class _Storage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.args = (storage, offset, shape, stride, False, OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


def _write_legacy(tensors: dict[str, tuple[_Storage, int, tuple, tuple]], storages: list[_Storage]) -> bytes:
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", sys.modules["torch"].FloatStorage, obj.key, "cpu", obj.data.size)
            return None

    Pickler(out, protocol=2).dump(OrderedDict((k, _Tensor(*v)) for k, v in tensors.items()))
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", s.data.size))
        out.write(s.data.astype("<f4").tobytes())
    return out.getvalue()


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of `torch` for pickle to name the globals a real checkpoint names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only used for pickling")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)


@pytest.fixture
def small_file(fake_torch) -> tuple[bytes, np.ndarray]:
    data = np.arange(24, dtype=np.float32)
    storage = _Storage("0", data)
    tensors = {
        "a": (storage, 0, (2, 3), (3, 1)),  # contiguous view
        "b": (storage, 6, (3, 2), (1, 3)),  # transposed view with an offset
        "c": (storage, 23, (), ()),  # scalar
    }
    return _write_legacy(tensors, [storage]), data


def test_reads_a_small_file_written_in_the_legacy_layout(small_file):
    raw, data = small_file
    state = read_state_dict(raw)
    assert list(state) == ["a", "b", "c"]
    np.testing.assert_array_equal(state["a"], data[:6].reshape(2, 3))
    np.testing.assert_array_equal(state["b"], data[6:12].reshape(2, 3).T)
    assert state["c"].shape == () and float(state["c"]) == 23.0


@pytest.mark.parametrize("cut", [10, 200, -50, -1])
def test_truncated_file_gets_a_clear_error(small_file, cut):
    raw, _ = small_file
    with pytest.raises(WeightsFileError, match=r"truncated|corrupt"):
        read_state_dict(raw[:cut])


def test_trailing_garbage_and_bad_magic_are_refused(small_file):
    raw, _ = small_file
    with pytest.raises(WeightsFileError, match="unexpected bytes"):
        read_state_dict(raw + b"x")
    with pytest.raises(WeightsFileError, match="magic"):
        read_state_dict(pickle.dumps(12345, protocol=2) + raw[20:])


def test_arbitrary_globals_are_never_called(fake_torch):
    """A hostile checkpoint naming os.system must fail to load, not run."""
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {}):
        pickle.dump(header, out, protocol=2)
    out.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(WeightsFileError, match=r"unexpected object os\.system"):
        read_state_dict(out.getvalue())


def test_corrupt_real_file_is_refused(tmp_path):
    raw = bytearray(LITE0.path().read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 8] = b"\xff" * 8  # damage inside a storage: caught by the hash
    bad = tmp_path / "bad.pth"
    bad.write_bytes(bytes(raw))
    with pytest.raises(WeightsFileError):
        read_verified(bad, LITE0.sha256)
    with pytest.raises(WeightsFileError):
        read_state_dict(bytes(raw[: len(raw) // 3]))
