"""Reading ``torch.save`` files (and TorchScript archives) without running anything from them.

Both layouts torch writes are parsed here, so that every pickle record of a user's file goes through
one restricted unpickler: the zip layout (``<archive>/data.pkl`` plus a ``<archive>/data/<key>``
record per storage; TorchScript archives look the same, their code is never compiled) and the legacy
layout (magic-number, protocol and sys-info records, the main pickle, the storage-key list, the raw
storages). ``torch.load(pickle_module=...)`` cannot promise that: its legacy reader unpickles the
header records with the module's plain ``load``, allocates storages of any size a record claims and
hands TorchScript archives to ``torch.jit.load``; ``weights_only=True`` refuses the authors' recorder
objects and still applies Parameter state.

Why the pure-Python ``pickle._Unpickler`` rather than only ``find_class``: ``find_class`` decides what
names resolve to, but other opcodes call methods of whatever object is on the stack: BUILD calls its
``__setstate__`` (``Tensor.__setstate__`` attaches backward hooks) or ``setattr``, APPEND(S),
SETITEM(S) and ADDITEMS its ``append``/``extend``/``__setitem__``/``add``. Overriding those opcodes
confines them to real lists, dicts, sets and placeholders, and REDUCE/NEWOBJ/OBJ/INST to the
allow-list, so all the code a file can reach is this (plus :class:`Placeholder`):

* ``torch._utils._rebuild_tensor`` / ``_v2`` / ``_v3``: a plain CPU tensor viewing a storage read
  from the file, bounds checked; backward hooks refused, ``requires_grad`` dropped, only the conj/neg
  bits of its metadata applied.
* ``torch._utils._rebuild_parameter`` / ``_with_state``, ``torch._tensor._rebuild_from_type_v2``:
  the plain data tensor; Parameter, subclass and Python attributes are dropped, never set.
* ``torch.<T>Storage`` / ``UntypedStorage``: a non-callable dtype marker, accepted only in storage ids.
* ``torch.Size`` of ints, ``torch.<dtype>`` (not callable), ``collections.OrderedDict``,
  ``builtins.set`` / ``frozenset`` / ``complex`` / ``slice``, and protocol 2's ways of writing
  ``bytes``: ``_codecs.encode`` of latin-1 text, ``bytes()``.

Every other name becomes an inert :class:`Placeholder` (the authors' recorder classes, numpy values):
calling it only records the arguments; nothing is imported. Names from modules that run code
(builtins' functions, ``os``, ``subprocess`` ...) refuse the file outright: a placeholder would be
inert too, but a file naming them was crafted, and is reported rather than quietly imported.
"""
from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from .errors import FerEdgeError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001
ZIP_EXPANSION = 32  # zip-bomb guard: torch stores records uncompressed (1x); allow recompressed files


class RefusedTorchFile(FerEdgeError):
    """The file asks for something this reader never does (run code, set hooks, foreign classes)."""


class UnreadableTorchFile(FerEdgeError):
    """The file is not a (complete, consistent) torch.save file or TorchScript archive; `reason` says why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} is not a readable PyTorch checkpoint ({reason})")
        self.reason = reason


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; becomes a RefusedTorchFile naming the file."""


class _NoHeader(Exception):
    """Not the legacy layout's header: a plain pickle or no pickle at all."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise _Refused(what)


def _shown(module: Any, name: Any) -> str:
    """A pickled name as it may appear in a one-line message (the file chooses it: escape, shorten)."""
    return repr(f"{module}.{name}")[1:-1][:120]


# --- what names resolve to -----------------------------------------------------------------------

class Placeholder:
    """Stands in for any name outside the allow-list; holds what the pickle gave it, runs nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs
        self.state: Any = None
        self.items: list = []    # APPEND(S)/ADDITEMS on a foreign list or set subclass
        self.entries: list = []  # SETITEM(S) on a foreign dict subclass, as (key, value) pairs

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualname}>"


@dataclass(frozen=True)
class _StorageKind:
    """What ``torch.FloatStorage`` & co. resolve to: the dtype of a storage id, nothing callable."""

    dtype: torch.dtype


@dataclass
class _Storage:
    """One storage record: `data` is its bytes (uint8), or None when only checking the file."""

    dtype: torch.dtype
    nbytes: int
    data: torch.Tensor | None


_STORAGE_KINDS = {f"{n}Storage": _StorageKind(d) for n, d in (
    ("Double", torch.float64), ("Float", torch.float32), ("Half", torch.float16), ("BFloat16", torch.bfloat16),
    ("Long", torch.int64), ("Int", torch.int32), ("Short", torch.int16), ("Char", torch.int8),
    ("Byte", torch.uint8), ("Bool", torch.bool), ("ComplexFloat", torch.complex64),
    ("ComplexDouble", torch.complex128), ("Untyped", torch.uint8))}
_DTYPES = {n: getattr(torch, n) for n in (
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex64", "complex128", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2")
    if isinstance(getattr(torch, n, None), torch.dtype)}
# Modules whose names no honest checkpoint holds: naming one refuses the file (see the module docstring).
_CODE_MODULES = frozenset((
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "shutil", "importlib", "runpy", "pty",
    "socket", "ctypes", "pickle", "_pickle", "marshal", "code", "codeop", "types", "operator", "codecs",
    "_codecs", "io", "_io", "tempfile", "webbrowser", "multiprocessing", "asyncio", "signal", "pydoc",
    "pdb", "timeit", "cProfile", "profile", "trace", "imp", "zipimport", "platform", "commands", "popen2"))


def _ints(value: Any, what: str) -> tuple[int, ...]:
    _require(isinstance(value, (tuple, list)) and all(type(v) is int and v >= 0 for v in value),
             f"a tensor {what} that is not a tuple of non-negative ints")
    return tuple(value)


def _no_hooks(hooks: Any) -> None:
    _require(hooks is None or (type(hooks) in (dict, OrderedDict) and not hooks), "a tensor with backward hooks")


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
            hooks: Any = None, metadata: Any = None, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    _require(isinstance(storage, _Storage), "a tensor whose storage is not a record of this file")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    _require(type(offset) is int and offset >= 0 and len(size) == len(stride), "a malformed tensor layout")
    _require(type(requires_grad) is bool, "a malformed tensor (requires_grad)")
    _no_hooks(hooks)
    meta = metadata or {}
    _require(type(meta) is dict and set(meta) <= {"conj", "neg"} and all(type(v) is bool for v in meta.values()),
             "tensor metadata other than the conj/neg bits")
    dtype = dtype or storage.dtype
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else -1
    _require((last + 1) * dtype.itemsize <= storage.nbytes, "a tensor that reaches past its storage")
    if storage.data is None:  # checking only: the layout is valid, no bytes are read
        return torch.empty_strided(size, stride, dtype=dtype, device="meta")
    flat = storage.data[: storage.nbytes - storage.nbytes % dtype.itemsize].view(dtype)
    t = flat.as_strided(size, stride, offset)
    if meta:
        torch._utils.set_tensor_metadata(t, meta)
    return t


def _tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None) -> torch.Tensor:
    _require(any(dtype is d for d in _DTYPES.values()), "a tensor of an unknown dtype")
    return _tensor(storage, offset, size, stride, requires_grad, hooks, metadata, dtype=dtype)


def _parameter(data: Any, requires_grad: Any, hooks: Any, state: Any = None) -> torch.Tensor:
    _require(type(data) is torch.Tensor and type(requires_grad) is bool, "a malformed Parameter")
    _no_hooks(hooks)
    _require(state is None or type(state) in (dict, tuple), "a Parameter with a malformed state")
    return data  # the state (Python attributes) is never applied


def _from_type(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    _require(any(func is f for f in (_tensor, _tensor_v3)) and type(args) is tuple, "a malformed tensor subclass")
    return func(*args)  # the subclass and its state are dropped


def _latin1(text: Any, encoding: Any = "latin1", errors: Any = "strict") -> bytes:
    _require(type(text) is str and encoding in ("latin1", "latin-1") and errors == "strict",
             "a codec call other than protocol 2's bytes")
    return text.encode("latin-1")


def _size(dims: Any) -> torch.Size:
    return torch.Size(_ints(dims, "size"))  # how older torch versions pickled tensor sizes


def _empty_bytes(*args: Any) -> bytes:
    _require(not args, "a bytes() call with arguments")  # protocol 2 writes b"" as bytes()
    return b""


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _from_type,
    ("torch", "Size"): _size,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _latin1,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
    **{(m, n): getattr(builtins, n) for m in ("builtins", "__builtin__")
       for n in ("set", "frozenset", "complex", "slice")},
}
_CALLABLES = tuple({id(v): v for v in _ALLOWED.values()}.values())
_NO_NAME = object()


def _resolve(module: str, name: str) -> Any:
    """The allow-listed object for a pickled name, or _NO_NAME; raises for names that run code."""
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_KINDS:
        return _STORAGE_KINDS[name]
    if module == "torch" and name in _DTYPES:
        return _DTYPES[name]
    root = module.split(".")[0]
    if root in _CODE_MODULES or (root in ("builtins", "__builtin__") and not isinstance(
            getattr(builtins, name, None), type)):
        raise _Refused(f"it refers to {_shown(module, name)}, which runs code")
    return _NO_NAME


# --- the unpickler --------------------------------------------------------------------------------

class _Unpickler(pickle._Unpickler):
    """Pure-Python unpickler whose calls and container opcodes reach only the allow-list (module docstring)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, persistent: Callable[[Any], Any] | None, foreign: bool):
        super().__init__(file, encoding="utf-8")
        self._persistent, self._foreign = persistent, foreign
        self._classes: dict[tuple[str, str], type] = {}

    def persistent_load(self, pid: Any) -> Any:
        _require(self._persistent is not None, "a persistent id outside a torch.save file")
        return self._persistent(pid)

    def find_class(self, module: str, name: str) -> Any:
        found = _resolve(module, name)
        if found is not _NO_NAME:
            return found
        _require(self._foreign, f"it holds a pickled {_shown(module, name)}")
        if (module, name) not in self._classes:
            self._classes[(module, name)] = type("Placeholder", (Placeholder,), {"qualname": _shown(module, name)})
        return self._classes[(module, name)]

    @staticmethod
    def _call(func: Any, args: Any, kwargs: Any = None) -> Any:
        _require(type(args) is tuple and (kwargs is None or type(kwargs) is dict), "a call with malformed arguments")
        if (isinstance(func, type) and issubclass(func, Placeholder)) or any(func is f for f in _CALLABLES):
            return func(*args, **(kwargs or {}))
        raise _Refused(f"it calls a {type(func).__name__}, which is not on the allow-list")

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj_ex(self):
        kwargs, args = self.stack.pop(), self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, kwargs)

    def _instantiate(self, klass, args):  # INST and OBJ (protocols 0 and 1)
        self.append(self._call(klass, tuple(args)))

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, Placeholder):
            target.state = state
        else:  # Python attributes of a real container (a state dict's _metadata) are dropped
            _require(type(target) in (dict, OrderedDict, list, set), f"it sets the state of a {type(target).__name__}")

    def _add(self, items: list, kind: type) -> None:
        target = self.stack[-1]
        if isinstance(target, Placeholder):
            (target.entries if kind is dict else target.items).extend(
                zip(items[::2], items[1::2]) if kind is dict else items)
            return
        _require(type(target) in ((dict, OrderedDict) if kind is dict else (kind,)),
                 f"it fills a {type(target).__name__} as a {kind.__name__}")
        if kind is dict:
            _require(len(items) % 2 == 0, "an odd SETITEMS")
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]
        else:
            (target.extend if kind is list else target.update)(items)

    def load_append(self):
        self._add([self.stack.pop()], list)

    def load_appends(self):
        items = self.pop_mark()
        self._add(items, list)

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._add([key, value], dict)

    def load_setitems(self):
        items = self.pop_mark()
        self._add(items, dict)

    def load_additems(self):
        items = self.pop_mark()
        self._add(items, set)

    def load_ext(self):
        raise _Refused("it uses the copyreg extension registry")

    for _op, _fn in (("REDUCE", load_reduce), ("NEWOBJ", load_newobj), ("NEWOBJ_EX", load_newobj_ex),
                     ("BUILD", load_build), ("APPEND", load_append), ("APPENDS", load_appends),
                     ("SETITEM", load_setitem), ("SETITEMS", load_setitems), ("ADDITEMS", load_additems),
                     ("EXT1", load_ext), ("EXT2", load_ext), ("EXT4", load_ext)):
        dispatch[getattr(pickle, _op)[0]] = _fn
    del _op, _fn


def _unpickle(file: BinaryIO, persistent=None, *, foreign: bool) -> Any:
    return _Unpickler(file, persistent, foreign).load()


# --- the two layouts ------------------------------------------------------------------------------

class _Budget:
    """Bytes of storage the file may claim in all: a record cannot make us allocate more than it holds."""

    def __init__(self, limit: int):
        self.left = limit

    def take(self, nbytes: int) -> None:
        _require(nbytes <= self.left, "storages larger than the file itself")
        self.left -= nbytes


def _storage_id(pid: Any, length: int) -> tuple[_StorageKind, str, int, Any]:
    """(kind, key, numel, rest) of a ('storage', kind, key, location, numel, ...) persistent id."""
    _require(type(pid) is tuple and len(pid) == length and pid[0] in ("storage", b"storage"),
             "a persistent id that is not a storage")
    kind, key, _location, numel = pid[1:5]
    _require(isinstance(kind, _StorageKind) and type(key) is str and type(numel) is int and numel >= 0,
             "a malformed storage id")
    return kind, key, numel, pid[5:]


def _fill(buffer: torch.Tensor, f: BinaryIO) -> None:
    view, done = memoryview(buffer.numpy()), 0
    while done < len(view):
        n = f.readinto(view[done:])
        _require(bool(n), "a storage record cut short")
        done += n


class _ZipStorages:
    """persistent_load of the zip layout: storage `key` is the record ``<archive>/data/<key>``."""

    def __init__(self, zf, prefix: str, budget: _Budget, materialize: bool):
        self.zf, self.prefix, self.budget, self.materialize = zf, prefix, budget, materialize
        self.names = set(zf.namelist())
        self.seen: dict[str, _Storage] = {}

    def __call__(self, pid: Any) -> _Storage:
        kind, key, numel, _ = _storage_id(pid, 5)
        nbytes = numel * kind.dtype.itemsize
        if key in self.seen:
            _require((self.seen[key].dtype, self.seen[key].nbytes) == (kind.dtype, nbytes), "a storage read as two types")
            return self.seen[key]
        name = f"{self.prefix}data/{key}"
        _require(name in self.names, f"a tensor whose data record {key!r} is missing")
        info = self.zf.getinfo(name)
        _require(info.file_size == nbytes, f"data record {key!r} of {info.file_size} bytes for {nbytes}")
        self.budget.take(nbytes)
        data = None
        if self.materialize:
            data = torch.empty(nbytes, dtype=torch.uint8)
            with self.zf.open(info) as fh:
                _fill(data, fh)
        self.seen[key] = _Storage(kind.dtype, nbytes, data)
        return self.seen[key]


def _read_zip(path: Path, *, foreign: bool, materialize: bool) -> Any:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        _require(len(pickles) == 1, "a zip file without exactly one <archive>/data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in zf.namelist():
            _require(zf.read(f"{prefix}byteorder").strip() == b"little", "a big-endian file")
        budget = _Budget(ZIP_EXPANSION * path.stat().st_size)
        info = zf.getinfo(pickles[0])
        budget.take(info.file_size)
        storages = _ZipStorages(zf, prefix, budget, materialize)
        return _unpickle(io.BytesIO(zf.read(info)), storages, foreign=foreign)


class _LegacyStorages:
    """persistent_load of the legacy layout: storages are allocated (within the file's size) as the
    main pickle names them, and filled from the raw records that follow the pickles."""

    def __init__(self, size: int, materialize: bool):
        self.size, self.budget, self.materialize = size, _Budget(size), materialize
        self.roots: dict[str, _Storage] = {}
        self.views: dict[str, _Storage] = {}

    def __call__(self, pid: Any) -> Any:
        if type(pid) is tuple and pid[:1] in (("module",), (b"module",)):  # torch.save(model): a class
            _require(len(pid) == 4 and isinstance(pid[1], type) and issubclass(pid[1], Placeholder),
                     "a malformed module id")
            return pid[1]
        kind, key, numel, (view,) = _storage_id(pid, 6)
        nbytes = numel * kind.dtype.itemsize
        if key not in self.roots:
            self.budget.take(nbytes)
            data = torch.zeros(nbytes, dtype=torch.uint8) if self.materialize else None
            self.roots[key] = _Storage(kind.dtype, nbytes, data)
        root = self.roots[key]
        _require((root.dtype, root.nbytes) == (kind.dtype, nbytes), "a storage read as two types")
        return root if view is None else self._view(root, view)

    def _view(self, root: _Storage, view: Any) -> _Storage:
        """(key, offset, numel) views of a root storage: files of PyTorch before 1.0."""
        _require(type(view) is tuple and len(view) == 3 and type(view[0]) is str, "a malformed storage view")
        offset, count = _ints(view[1:], "storage view")
        lo, hi = offset * root.dtype.itemsize, (offset + count) * root.dtype.itemsize
        _require(hi <= root.nbytes, "a storage view past its storage")
        if view[0] not in self.views:
            self.views[view[0]] = _Storage(root.dtype, hi - lo, None if root.data is None else root.data[lo:hi])
        return self.views[view[0]]

    def fill(self, f: BinaryIO, keys: Any) -> None:
        """Read the raw records: per key, its element count (int64) and bytes; every storage exactly once."""
        _require(type(keys) is list and all(type(k) is str for k in keys) and len(set(keys)) == len(keys)
                 and set(keys) == set(self.roots), "a storage list that does not match the tensors")
        for key in keys:
            root = self.roots[key]
            raw = f.read(8)
            _require(len(raw) == 8 and struct.unpack("<q", raw)[0] * root.dtype.itemsize == root.nbytes,
                     f"storage {key!r} recorded with another size")
            if root.data is None:
                f.seek(root.nbytes, os.SEEK_CUR)
                _require(f.tell() <= self.size, "a storage record cut short")
            else:
                _fill(root.data, f)


def _read_legacy(path: Path, *, foreign: bool, materialize: bool) -> Any:
    with open(path, "rb") as f:
        for expected in (LEGACY_MAGIC, LEGACY_PROTOCOL):
            if _unpickle(f, foreign=False) != expected:
                raise _NoHeader()
        sys_info = _unpickle(f, foreign=False)
        _require(type(sys_info) is dict and sys_info.get("little_endian") is True, "a big-endian file")
        storages = _LegacyStorages(path.stat().st_size, materialize)
        obj = _unpickle(f, storages, foreign=foreign)
        storages.fill(f, _unpickle(f, foreign=False))
        return obj


def read_torch_file(path: str | Path, *, foreign: bool = True, materialize: bool = True) -> Any:
    """The object a ``torch.save`` file (zip or legacy) or TorchScript archive holds, read safely.

    Tensors are plain CPU tensors; names outside the allow-list are :class:`Placeholder` classes when
    `foreign` (the authors' recorder objects), a refusal otherwise. ``materialize=False`` checks the
    whole file (every pickle record, every storage record's size) without reading tensor bytes:
    tensors come back on the meta device. Raises RefusedTorchFile / UnreadableTorchFile, one line.
    """
    path = Path(path)
    name = " ".join(path.name.split())
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"  # torch's own test for its zip layout
        reader = _read_zip if is_zip else _read_legacy
        return reader(path, foreign=foreign, materialize=materialize)
    except _Refused as exc:
        raise RefusedTorchFile(f"{name} is refused: {exc}; fer-edge reads only tensors and plain data "
                               "from PyTorch files and never runs code from them") from None
    except _NoHeader:
        raise UnreadableTorchFile(name, "no torch.save header: a plain pickle, or not a PyTorch file") from None
    except Exception as exc:  # anything a damaged file makes the parser raise: zip, struct, pickle, memory errors
        why = " ".join(str(exc).split())[:200]
        raise UnreadableTorchFile(name, f"{type(exc).__name__}: {why}" if why else type(exc).__name__) from None
