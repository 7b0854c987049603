"""Static analysis of pickle streams: what loading them would import and call, never unpickled.

`scan_pickle` walks the opcodes with `pickletools.genops` and runs a symbolic copy of the
unpickler's stack and memo, so that every way a pickle can name a callable is resolved the way
`pickle.load` would resolve it: `GLOBAL` and `INST` arguments, `STACK_GLOBAL` operands wherever they
come from (literals, `PUT`/`BINPUT`/`MEMOIZE` in any mix and order, `GET` of keys never stored,
values that are not strings), `EXT1/2/4` extension codes (looked up in `copyreg`'s registry,
unresolved otherwise), and the callables that `REDUCE`, `OBJ`, `INST`, `NEWOBJ` and `NEWOBJ_EX`
invoke. Consecutive pickles in one stream are all read (the legacy torch format holds five).

Every import is then classified (`classify`) against an allowlist of the callables a weights
pickle needs (torch's `weights_only` set, numpy reconstruction, a few builtins); everything else is
flagged, and flagged as dangerous when it can run code, touch the file system or network, import
modules dynamically or deserialise again.

Why not picklescan or fickling alone: both work from a denylist, so each new gadget
(`torch.utils.collect_env.run`, `pip._internal`, `pandas.read_csv`, ...) was a bypass until added;
an allowlist fails closed. The danger lists below only decide how loud a flagged import is.

Provenance of the lists (ideas and names, not code):
- mmaitre314/picklescan `src/picklescan/scanner.py` `_unsafe_globals` / `_safe_globals`
  (MIT, commit f15d54da3dec9aa28a87ede82f87882bb80f1023) and its bypass advisories (GHSA-*).
- protectai/modelscan `modelscan/settings.py` `unsafe_globals` (Apache-2.0, commit
  8b8ed4bf78a863fcf3b664888dc7ff6ae22f5230); issues #85 (BUILD + memo), #269 (pandas.read_pickle),
  #330 (numpy `__builtins__`), #331 (importlib + getattr), #338 (collect_env.run,
  multiprocessing.util.spawnv_passfds, mlflow `_run_entry_point`, pandas read_csv exfiltration).
- trailofbits/fickling `fickling/fickle.py` `UNSAFE_IMPORTS` (LGPL-3.0, commit
  854c99acd2637f97162dd2e1aa2dab4e8d55d77d): module names consulted, no code copied.
- pytorch `torch/_weights_only_unpickler.py` `_get_allowed_globals` (BSD-3-Clause, torch 2.13.0):
  the allowlist of torch callables.
"""

from __future__ import annotations

import enum
import pickletools
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

MAX_OPCODES = 20_000_000
"""Opcodes read per stream before the scan gives up (a 70B-parameter state dict needs ~1M)."""

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_TORCH_PICKLES = 5
_IDENTIFIER = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*\Z")


class Danger(str, enum.Enum):
    """How an imported callable is judged."""

    SAFE = "safe"
    """On the weights allowlist."""
    UNKNOWN = "unknown"
    """Outside the allowlist: a weights file has no reason to import it."""
    DANGEROUS = "dangerous"
    """Runs code, touches files or the network, imports dynamically or deserialises again."""
    UNRESOLVED = "unresolved"
    """The target cannot be known without running the pickle (computed name, unknown memo key,
    unregistered extension code): assume the worst."""


def _words(*chunks: str) -> tuple[str, ...]:
    """Whitespace-separated names: long name lists stay readable and diff well."""
    return tuple(" ".join(chunks).split())


# --- The allowlist --------------------------------------------------------------------------------
_TORCH_TYPES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte")
_TORCH_DTYPES = _words(
    "bfloat16 bits16 bits1x8 bits2x4 bits4x2 bits8 bool complex128 complex32 complex64 float16 "
    "float32 float4_e2m1fn_x2 float64 float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz",
    "float8_e8m0fnu int1 int2 int3 int4 int5 int6 int7 int8 int16 int32 int64 qint32 qint8",
    "quint2x4 quint4x2 quint8 uint1 uint2 uint3 uint4 uint5 uint6 uint7 uint8 uint16 uint32 uint64 "
    "per_channel_affine per_channel_affine_float_qparams per_channel_symmetric per_tensor_affine "
    "per_tensor_symmetric",
)
_TORCH_REBUILD = _words(
    "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor "
    "_rebuild_wrapper_subclass _rebuild_device_tensor_from_numpy "
    "_rebuild_device_tensor_from_cpu_tensor _rebuild_meta_tensor_no_storage _rebuild_nested_tensor",
)


def _safe_globals() -> frozenset[tuple[str, str]]:
    storages = [f"{t}Storage" for t in (*_TORCH_TYPES, "Bool", "ComplexFloat", "ComplexDouble")]
    quantized = ["QInt32Storage", "QInt8Storage", "QUInt2x4Storage", "QUInt4x2Storage"]
    tensors = [f"{t}Tensor" for t in (*_TORCH_TYPES, "Bool")]
    pairs = {
        ("collections", "OrderedDict"),
        ("collections", "Counter"),
        ("_codecs", "encode"),  # protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')
        ("copyreg", "_reconstructor"),  # protocol 0/1 objects; the class is checked on its own
        *(("builtins", n) for n in ("set", "frozenset", "bytearray", "complex", "slice", "range")),
        ("builtins", "object"),  # the base copyreg._reconstructor names for plain objects
        ("torch", "Size"),
        ("torch", "Tensor"),
        ("torch", "device"),
        ("torch", "QUInt8Storage"),
        ("torch.nn.parameter", "Parameter"),
        ("torch.serialization", "_get_layout"),
        ("torch.storage", "TypedStorage"),
        ("torch.storage", "UntypedStorage"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        *(("torch", n) for n in (*storages, *quantized, *tensors, *_TORCH_DTYPES)),
        *(("torch.cuda", n) for n in (*storages, *tensors)),
        *(("torch.sparse", n) for n in tensors if n != "BoolTensor"),
        *(("torch.cuda.sparse", n) for n in tensors if n != "BoolTensor"),
        *(("torch._utils", n) for n in _TORCH_REBUILD),
    }
    for np_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        pairs |= {(np_core, "_reconstruct"), (np_core, "scalar")}
    pairs |= {("numpy", "ndarray"), ("numpy", "dtype")}
    return frozenset(pairs)


SAFE_GLOBALS = _safe_globals()
"""(module, name) pairs a weights pickle may import: matched exactly, dotted names included."""

# --- What makes a flagged import dangerous -------------------------------------------------------
DANGEROUS_MODULES = frozenset(
    _words(
        # process, shell and interpreter control
        "os posix nt posixpath ntpath subprocess _posixsubprocess pty commands sys multiprocessing "
        "signal _signal threading _thread atexit platform gc ctypes _ctypes cffi _interpreters "
        "_xxsubinterpreters "
        # running or compiling code, importing dynamically
        "builtins __builtin__ code codeop runpy marshal types importlib _frozen_importlib "
        "_frozen_importlib_external _imp imp pkgutil zipimport site inspect pydoc doctest timeit "
        "trace profile cProfile pdb bdb idlelib lib2to3 test unittest _pyrepl IPython jinja2",
        "numexpr sympy "
        # nested deserialisation
        "pickle _pickle dill cloudpickle joblib shelve marshal copyreg "
        # files and archives
        "io _io codecs shutil tempfile pathlib glob fileinput linecache filecmp tarfile zipfile "
        "sqlite3 _sqlite3 mmap logging distutils setuptools compileall py_compile "
        # network
        "socket _socket ssl select selectors socketserver http httplib urllib urllib2 urllib3 "
        "requests httpx aiohttp ftplib smtplib imaplib poplib telnetlib nntplib xmlrpc webbrowser "
        "asyncio fsspec smart_open boto3 botocore huggingface_hub "
        # package managers and environments; stdlib helpers that shell out
        "pip ensurepip venv uuid _osx_support _aix_support "
        # library entry points that run code, commands or loaders (bypass reports)
        "numpy.f2py numpy.testing numpy.distutils numpy.ctypeslib numpy.lib.npyio pandas.io mlflow "
        "transformers.dynamic_module_utils torch.hub torch.package torch.jit torch.fx",
        "torch._dynamo torch._inductor torch.ops torch.distributed torch.multiprocessing",
        "torch.utils.bottleneck "
        "torch.utils.collect_env torch.utils.cpp_extension torch.utils.data.datapipes "
        "torch.utils._config_module torch.serialization torch.testing",
    )
)
"""Module roots whose every callable is treated as dangerous (submodules included)."""

_DANGEROUS_TOKENS = frozenset(
    _words(
        "eval exec execfile compile system popen spawn spawnl spawnv spawnve spawnvp",
        "spawnv_passfds "
        "execv execve execl execvp run runcode runcommand runctx runstring call check_call "
        "check_output getoutput getstatusoutput shell load loads load_file load_module import "
        "import_module reload locate resolve getattr setattr delattr attrgetter itemgetter "
        "methodcaller partial urlopen download upload open read write unlink remove rmtree rename "
        "fromfile evaluate sympify pager pipepager apply breakpoint globals locals vars input "
        "entry codecache",
    )
)
"""Name tokens (split on `_` and `.`) of callables that execute, load or fetch whatever the
pickle passes them, whatever their module (e.g. `torch.utils.collect_env.run`,
`pandas.read_csv`, `numpy.load`, `mlflow..._run_entry_point`)."""


def _norm(module: str, name: str) -> tuple[str, str]:
    """Protocol 0-2 pickles name Python 2 modules; the unpickler maps them (fix_imports)."""
    from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def classify(module: str, name: str) -> Danger:
    """How dangerous importing `module.name` from a pickle is."""
    module, name = _norm(module, name)
    if (module, name) in SAFE_GLOBALS:
        return Danger.SAFE
    parts = module.split(".")
    roots = {".".join(parts[: i + 1]) for i in range(len(parts))}
    tokens = {t.lower() for t in re.split(r"[._]+", name) if t}
    dunder = any(p.startswith("__") and p.endswith("__") for p in (*parts, *name.split(".")))
    if roots & DANGEROUS_MODULES or tokens & _DANGEROUS_TOKENS or (dunder and module != "__main__"):
        return Danger.DANGEROUS
    return Danger.UNKNOWN


# --- The symbolic unpickler -----------------------------------------------------------------------
@dataclass(frozen=True)
class PickleImport:
    """One callable a pickle would import (first occurrence)."""

    module: str
    name: str
    opcode: str
    offset: int | None
    danger: Danger

    @property
    def dotted(self) -> str:
        """`module.name` as the unpickler resolves it, or why it cannot be resolved."""
        return f"<unresolved: {self.name}>" if self.module == "?" else f"{self.module}.{self.name}"


@dataclass(frozen=True)
class PickleReport:
    """What a pickle stream would do when loaded, read statically."""

    imports: tuple[PickleImport, ...]
    anomalies: tuple[str, ...]
    """Constructs no serializer emits (calling a computed value, changing an imported object)."""
    error: str | None
    """Why reading stopped early (malformed, truncated, over a limit); None when complete."""
    pickles: int
    """Complete pickles read."""
    opcodes: int
    started_with_proto: bool

    @property
    def dangerous(self) -> tuple[PickleImport, ...]:
        """Imports that can run code (dangerous or unresolved)."""
        bad = (Danger.DANGEROUS, Danger.UNRESOLVED)
        return tuple(i for i in self.imports if i.danger in bad)

    @property
    def unknown(self) -> tuple[PickleImport, ...]:
        """Imports outside the allowlist that are not known to be dangerous."""
        return tuple(i for i in self.imports if i.danger == Danger.UNKNOWN)

    @property
    def plausible(self) -> bool:
        """Whether the bytes are a pickle at all: a PROTO header, a complete pickle, or an
        import with well-formed names before the parse failed."""
        return self.started_with_proto or self.pickles > 0 or bool(self.imports)


class ScanLimitError(ValueError):
    """A stream asked for more than the scan allows (a huge argument, too many opcodes)."""


class _Value:
    """A symbolic stack value; subclasses say what it is."""

    __slots__ = ()


class _Text(_Value):
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


class _Ref(_Value):
    """An imported callable, not yet called."""

    __slots__ = ("imp",)

    def __init__(self, imp: PickleImport) -> None:
        self.imp = imp


class _Made(_Value):
    """The result of calling something."""

    __slots__ = ()


_OTHER = _Value()
_MADE = _Made()
_TEXT_OPS = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
}


@dataclass
class _Machine:
    """The unpickler's stack, mark stack and memo, holding symbolic values."""

    strict_names: bool
    stack: list[_Value] = field(default_factory=list)
    marks: list[list[_Value]] = field(default_factory=list)
    memo: dict[int, _Value] = field(default_factory=dict)
    imports: dict[tuple[str, str], PickleImport] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)

    def pop(self) -> _Value:
        if not self.stack:
            raise ValueError("stack underflow")
        return self.stack.pop()

    def top(self) -> _Value:
        if not self.stack:
            raise ValueError("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[_Value]:
        if not self.marks:
            raise ValueError("MARK expected but none is open")
        frame, self.stack = self.stack, self.marks.pop()
        return frame

    def note(self, text: str) -> None:
        if text not in self.anomalies and len(self.anomalies) < 20:
            self.anomalies.append(text)

    def imported(
        self, module: str, name: str, opcode: str, pos: int | None, *, computed: bool = False
    ) -> _Ref:
        well_formed = bool(_IDENTIFIER.match(module) and _IDENTIFIER.match(name))
        if self.strict_names and not (well_formed or computed):
            # Text mistaken for a protocol-0 pickle: such a name cannot import anything.
            raise ValueError(f"{opcode} names {module!r}.{name!r}, not a Python name")
        module, name = _norm(module, name)
        danger = classify(module, name) if well_formed else Danger.UNKNOWN
        if computed:
            danger = Danger.UNRESOLVED
        imp = self.imports.setdefault(
            (module, name), PickleImport(module, name, opcode, pos, danger)
        )
        return _Ref(imp)

    def called(self, func: _Value, opcode: str) -> _Value:
        if not isinstance(func, _Ref):
            self.note(f"{opcode} calls a computed value, not an imported callable")
        return _MADE

    def mutated(self, target: _Value, opcode: str) -> None:
        if isinstance(target, _Ref):
            self.note(f"{opcode} changes the imported object {target.imp.dotted}")


def _text(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
    m.stack.append(_Text(text) if len(text) <= 4096 else _OTHER)


def _global(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    module, _, attr = str(arg).partition(" ")
    ref = m.imported(module, attr, name, pos)
    if name == "INST":
        m.pop_mark()  # pickle.py imports first, then takes the arguments
        m.stack.append(m.called(ref, name))
    else:
        m.stack.append(ref)


def _stack_global(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    attr, module = m.pop(), m.pop()
    if isinstance(module, _Text) and isinstance(attr, _Text):
        m.stack.append(m.imported(module.value, attr.value, name, pos))
    else:
        operands = "STACK_GLOBAL of computed operands"
        m.stack.append(m.imported("?", operands, name, pos, computed=True))


def _ext(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    import copyreg

    assert isinstance(arg, int)
    # Reading copyreg's registry runs nothing; unregistered codes cannot be known statically.
    found = copyreg._inverted_registry.get(arg)  # type: ignore[attr-defined]
    module, attr = found if found else ("?", f"unregistered extension code {arg}")
    m.stack.append(m.imported(module, attr, name, pos, computed=not found))


def _call(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    # REDUCE pops (callable, args); NEWOBJ (cls, args); NEWOBJ_EX (cls, args, kwargs).
    for _ in range(2 if name == "NEWOBJ_EX" else 1):
        m.pop()
    m.stack.append(m.called(m.pop(), name))


def _obj(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    frame = m.pop_mark()
    if not frame:
        raise ValueError("OBJ without a class")
    m.stack.append(m.called(frame[0], name))


def _mutate(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    if name in ("SETITEMS", "APPENDS", "ADDITEMS"):
        m.pop_mark()
    else:  # BUILD, APPEND: one value; SETITEM: key and value
        for _ in range(2 if name == "SETITEM" else 1):
            m.pop()
    m.mutated(m.top(), name)


def _mark(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    m.marks.append(m.stack)
    m.stack = []


def _pop(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    # pickle.py: POP on an empty stack pops the mark instead.
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _dup(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    m.stack.append(m.top())


def _put(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    key = len(m.memo) if name == "MEMOIZE" else arg
    assert isinstance(key, int)
    m.memo[key] = m.top()


def _get(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    assert isinstance(arg, int)
    if arg not in m.memo:
        m.note(f"{name} reads memo key {arg}, never stored")
    m.stack.append(m.memo.get(arg, _OTHER))


def _nothing(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    return None


_Handler = Callable[[_Machine, str, object, "int | None"], None]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(_TEXT_OPS, _text),
    **dict.fromkeys(("GLOBAL", "INST"), _global),
    "STACK_GLOBAL": _stack_global,
    **dict.fromkeys(("EXT1", "EXT2", "EXT4"), _ext),
    **dict.fromkeys(("REDUCE", "NEWOBJ", "NEWOBJ_EX"), _call),
    "OBJ": _obj,
    **dict.fromkeys(("BUILD", "SETITEM", "APPEND", "SETITEMS", "APPENDS", "ADDITEMS"), _mutate),
    "MARK": _mark,
    "POP": _pop,
    "DUP": _dup,
    **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"), _put),
    **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), _get),
    **dict.fromkeys(("PROTO", "FRAME", "READONLY_BUFFER"), _nothing),
}
"""pickle.py's `load_*` semantics on symbolic values, for the opcodes whose values matter."""


def _effects(op: pickletools.OpcodeInfo) -> tuple[bool, int, int]:
    before = [s for s in op.stack_before if s is not pickletools.stackslice]
    mark = pickletools.markobject in before
    return mark, len(before) - mark, len(op.stack_after)


_EFFECTS = {op.name: _effects(op) for op in pickletools.opcodes}
"""(takes a mark, values popped, values pushed) of every opcode, from pickletools' metadata."""


def _step(m: _Machine, name: str, arg: object, pos: int | None) -> None:
    """Apply one opcode to the machine."""
    handler = _HANDLERS.get(name)
    if handler is not None:
        handler(m, name, arg, pos)
        return
    mark, pops, pushes = _EFFECTS[name]
    if mark:
        m.pop_mark()
    for _ in range(pops):
        m.pop()
    m.stack.extend([_OTHER] * pushes)


@dataclass
class _Progress:
    opcodes: int = 0
    pickles: int = 0
    proto: bool = False
    first_value: object = None


def _run_one(stream: IO[bytes], m: _Machine, progress: _Progress, first: bool) -> None:
    """Read one pickle (up to and including STOP)."""
    ops = pickletools.genops(stream)
    for op, arg, pos in ops:
        if first:
            # The legacy torch format opens with a pickled magic number (then 4 more pickles).
            progress.proto = op.name == "PROTO"
            if op.name == "PROTO":
                op, arg, pos = next(ops)
                progress.opcodes += 1
            if op.name in ("LONG1", "LONG4", "LONG"):
                progress.first_value = arg
            first = False
        progress.opcodes += 1
        if progress.opcodes > MAX_OPCODES:
            raise ScanLimitError(f"more than {MAX_OPCODES} opcodes")
        if op.name == "STOP":
            m.pop()
            m.stack, m.marks = [], []
            return
        _step(m, op.name, arg, pos)


def _at_end(stream: IO[bytes]) -> bool:
    pos = stream.tell()
    more = stream.read(1)
    stream.seek(pos)
    return not more


def scan_pickle(stream: IO[bytes], *, claimed: bool = True) -> PickleReport:
    """Statically read every pickle in `stream` (seekable, positioned at its start).

    `claimed`: the name or magic says this is a pickle. When False the stream is only a
    candidate (any file may be a protocol-0 pickle): names that are not Python identifiers then
    mean "not a pickle" rather than an import.
    """
    m = _Machine(strict_names=not claimed)
    progress = _Progress()
    error: str | None = None
    while True:
        first = progress.pickles == 0
        start_imports = len(m.imports)
        try:
            _run_one(stream, m, progress, first)
        except ScanLimitError as exc:
            # What was read so far still counts: padding after a payload must not hide it.
            error = f"scan limit reached: {exc}"
            break
        except (ValueError, struct.error, EOFError, OverflowError) as exc:
            # Later pickles may be followed by raw data (legacy torch storages): an error there
            # only matters when the partial pickle had already imported something.
            if first or len(m.imports) > start_imports:
                error = f"{type(exc).__name__}: {exc}"
            break
        progress.pickles += 1
        legacy_torch = progress.first_value == _TORCH_MAGIC
        if (legacy_torch and progress.pickles >= _LEGACY_TORCH_PICKLES) or _at_end(stream):
            break
    return PickleReport(
        imports=tuple(m.imports.values()),
        anomalies=tuple(m.anomalies),
        error=error,
        pickles=progress.pickles,
        opcodes=progress.opcodes,
        started_with_proto=progress.proto,
    )


def looks_like_pickle(head: bytes) -> bool:
    """A PROTO opcode with a known protocol: every protocol 2+ pickle starts this way."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] <= 5


def iter_names(report: PickleReport, danger: tuple[Danger, ...]) -> Iterator[str]:
    """Dotted names of the report's imports with one of these dangers, in first-seen order."""
    return (i.dotted for i in report.imports if i.danger in danger)
