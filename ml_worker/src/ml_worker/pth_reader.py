"""Read PyTorch's legacy (non-zip) ``torch.save`` format with numpy only.

The weights we serve ship as a legacy ``.pth`` file; reading it here keeps
PyTorch out of the project. The layout is a sequence of pickles — magic number,
protocol version, sys info, the object (tensors refer to storages through
persistent ids), the list of storage keys — followed by each storage's raw
bytes, prefixed by its element count. Only the handful of globals a state dict
needs are allowed, so a hostile file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightsFileError(ValueError):
    """The file is not a readable legacy PyTorch checkpoint (or not the one pinned)."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise WeightsFileError(f"storage {self.storage.key} has no data")
        if not self.shape:
            return data[self.offset : self.offset + 1].reshape(()).copy()
        extent = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True)) + 1
        if self.offset < 0 or extent > data.size:
            raise WeightsFileError(f"tensor view exceeds storage {self.storage.key}")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(tensor: _TensorRef, *_: Any) -> _TensorRef:
    return tensor


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler that knows only state-dict globals and records storages."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise WeightsFileError(f"unexpected object {module}.{name} in weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsFileError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise WeightsFileError(f"unexpected storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


class _SafeScalarUnpickler(pickle.Unpickler):
    """For the header pickles, which hold only ints, dicts and strings."""

    def find_class(self, module: str, name: str) -> Any:
        raise WeightsFileError(f"unexpected object {module}.{name} in weights header")


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise WeightsFileError(f"file is truncated (while reading {what})")
    return data


def read_state_dict(source: Path | bytes) -> OrderedDict[str, np.ndarray]:
    """Return the checkpoint's tensors as numpy arrays, or raise WeightsFileError.

    Nothing is returned unless every tensor was read completely.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    f = io.BytesIO(raw)
    try:
        if _SafeScalarUnpickler(f).load() != MAGIC_NUMBER:
            raise WeightsFileError("not a legacy PyTorch file (bad magic number)")
        if _SafeScalarUnpickler(f).load() != PROTOCOL_VERSION:
            raise WeightsFileError("unsupported legacy PyTorch protocol version")
        _SafeScalarUnpickler(f).load()  # sys info: endianness and type sizes
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        keys = _SafeScalarUnpickler(f).load()
    except WeightsFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise WeightsFileError(f"file is corrupt or truncated: {exc}") from None
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise WeightsFileError("file does not hold a state dict")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise WeightsFileError(f"storage {key} is listed but never used")
        (numel,) = struct.unpack("<q", _read_exact(f, 8, f"storage {key} size"))
        if numel != storage.numel:
            raise WeightsFileError(f"storage {key} holds {numel} elements, expected {storage.numel}")
        nbytes = numel * storage.dtype.itemsize
        storage.data = np.frombuffer(_read_exact(f, nbytes, f"storage {key}"), dtype=storage.dtype)
    if f.read(1):
        raise WeightsFileError("unexpected bytes after the last storage")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise WeightsFileError(f"entry {name!r} is not a tensor")
        out[str(name)] = value.materialize()
    return out


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(path: Path, expected_sha256: str) -> OrderedDict[str, np.ndarray]:
    """Read ``path`` only if its sha256 is the pinned one."""
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise WeightsFileError(f"{path.name}: sha256 {actual} does not match the pinned {expected_sha256}")
    return read_state_dict(path)
