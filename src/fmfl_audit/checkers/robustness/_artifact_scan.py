"""FMFL-R04's content scan of one artifact file: formats told by their bytes, containers opened.

A file's name never decides whether it is scanned: its first bytes do. Zip archives (the torch
format, `.npz`), tar archives (`.pth.tar`, legacy torch), gzip / bz2 / xz streams are opened and
each member is scanned the same way, down to `ScanLimits.max_depth` levels; numpy `.npy` files
with an object dtype carry a pickle, which is scanned; any stream may be a pickle of any protocol
(`inputs.pickles.scan_pickle`). Archives Python cannot open (7z, rar, zstd, lz4, encrypted zip
members) are reported as unscannable. A zip whose central directory is corrupt is reported and
its local entries are still read one by one, as lenient readers (torch's included) would.

Each file and each member is scanned inside its own isolation point: whatever a crafted input
raises becomes an `unparsable` hit about that input, and the scan goes on with the next.
"""

from __future__ import annotations

import enum
import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.checkpoint_safety import display_name, parse_json_bytes
from fmfl_audit.inputs.checkpoints import PICKLE_SUFFIXES
from fmfl_audit.inputs.pickles import (
    PickleReport,
    ScanLimitError,
    looks_like_pickle,
    scan_pickle,
)

DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}
"""Bytes per element of every safetensors dtype (F4 / F6 sub-byte types are reported as unknown)."""

MAX_SAFETENSORS_HEADER = 100_000_000
"""The safetensors format's own header limit."""
_CLAIMED_SUFFIXES = PICKLE_SUFFIXES | {
    ".dat",
    ".data",
    ".dill",
    ".npy",
    ".npz",
    ".zip",
    ".tar",
    ".pkl",
}
"""Extensions that promise a format R04 scans: content matching none of them is a finding."""
_MAX_READ = 512 << 20
_MAX_LINE = 64 << 20
_IN_MEMORY = 64 << 20
_UNSCANNABLE_MAGIC = (
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"Rar!\x1a\x07", "rar archive"),
    (b"\x28\xb5\x2f\xfd", "zstd stream"),
    (b"\x04\x22\x4d\x18", "lz4 stream"),
)


class HitKind(str, enum.Enum):
    """What the scan found in one file or member."""

    PICKLE = "pickle"
    SAFETENSORS = "safetensors"
    UNPARSABLE = "unparsable"
    """A file or member the scan could not parse: itself a finding."""
    UNSCANNABLE = "unscannable"
    """A container the scan cannot open (format, encryption, size or depth limit)."""


@dataclass(frozen=True)
class Hit:
    """One observation: where (`file!member!inner`), what kind, and its details."""

    kind: HitKind
    where: str
    detail: str = ""
    pickle: PickleReport | None = None
    problems: tuple[str, ...] = ()
    """Safetensors header problems (empty when consistent)."""


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on one file's scan (a zip bomb or a deep nest is reported, never followed)."""

    max_depth: int = 4
    max_bytes: int = 4 << 30
    max_members: int = 200_000


class _LimitError(ScanLimitError):
    """The scan of this file reached a `ScanLimits` bound."""


class _StreamError(ValueError):
    """Reading the underlying stream failed (bad CRC, truncated member, decompression error)."""


@dataclass
class _Budget:
    limit: int
    used: int = 0

    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise _LimitError(f"more than {self.limit >> 20} MiB read from one file")


class _Metered(io.RawIOBase):
    """A seekable binary stream that charges what it reads to the file's budget and turns the
    wrapped stream's own errors into `_StreamError` (a ValueError, so a pickle scan keeps what it
    had read before)."""

    def __init__(self, raw: IO[bytes], budget: _Budget) -> None:
        super().__init__()
        self._raw = raw
        self._budget = budget

    def _guard(self, fn: Callable[[], bytes]) -> bytes:
        try:
            data = fn()
        except (_LimitError, _StreamError):
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile, gzip, lzma, tarfile: own error types
            raise _StreamError(f"{type(exc).__name__}: {exc}") from None
        self._budget.charge(len(data))
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self._guard(lambda: self._raw.read(size))
        out = bytearray()
        while chunk := self._guard(lambda: self._raw.read(1 << 20)):
            out += chunk
        return bytes(out)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self._raw.seek(offset, whence)
        except Exception as exc:  # noqa: BLE001 - as in `_guard`
            raise _StreamError(f"{type(exc).__name__}: {exc}") from None

    def tell(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


class _Reader(io.BufferedReader):
    """Buffers a `_Metered` stream (genops reads one byte per opcode: the buffer keeps that in
    C) and caps single reads and lines, so a length prefix or a missing newline in a crafted
    pickle cannot make the scan hold gigabytes."""

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > _MAX_READ:
            raise _LimitError(f"a single value of {size} bytes (limit {_MAX_READ >> 20} MiB)")
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        cap = _MAX_LINE if size is None or size < 0 else min(size, _MAX_LINE)
        return super().readline(cap)


def _metered(raw: IO[bytes], budget: _Budget) -> IO[bytes]:
    # A BufferedReader is a binary file for every reader used here; typeshed just cannot say so.
    return cast("IO[bytes]", _Reader(_Metered(raw, budget), buffer_size=1 << 16))


def safetensors_header_problems(stream: IO[bytes], size: int) -> list[str]:
    """What is wrong with a safetensors header read from `stream`; empty when consistent."""
    head = stream.read(8)
    if len(head) < 8:
        return ["file shorter than the 8-byte header length"]
    (n,) = struct.unpack("<Q", head)
    if n > min(size - 8, MAX_SAFETENSORS_HEADER):
        return [f"header length {n} exceeds the file"]
    try:
        header = parse_json_bytes(stream.read(n), what="header")
    except InputError as exc:
        return [str(exc)]
    if not isinstance(header, dict):
        return ["header is not a JSON object"]
    return _tensor_problems(header, size - 8 - n)


def _entry_problem(name: str, info: Any) -> str | None:
    if not isinstance(info, dict):
        return f"{name}: entry is not an object"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        return f"{name}: unknown dtype {dtype!r}"
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        return f"{name}: invalid shape {shape!r}"
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        return f"{name}: invalid data_offsets {offsets!r}"
    return None


def _tensor_problems(header: dict[str, Any], data_len: int) -> list[str]:
    import math

    problems: list[str] = []
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        problem = _entry_problem(name, info)
        if problem:
            problems.append(problem)
            continue
        shape, offsets = info["shape"], info["data_offsets"]
        expected = math.prod(shape) * DTYPE_BYTES[info["dtype"]]
        if offsets[1] - offsets[0] != expected:
            problems.append(
                f"{name}: {offsets[1] - offsets[0]} bytes for shape {shape} {info['dtype']} "
                f"(expected {expected})"
            )
        spans.append((offsets[0], offsets[1], name))
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            kind = "overlaps the previous tensor" if b < pos else f"leaves a gap of {b - pos} bytes"
            problems.append(f"{name}: data {kind}")
        pos = max(pos, e)
    if pos != data_len:
        problems.append(f"tensor data ends at byte {pos} but the data section has {data_len}")
    return problems


def _is_safetensors(head: bytes, stream: IO[bytes]) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= min(_size(stream) - 8, MAX_SAFETENSORS_HEADER)


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


@dataclass
class _Scan:
    """The scan of one top-level file: its budget, limits and what it found."""

    limits: ScanLimits
    budget: _Budget
    hits: list[Hit] = field(default_factory=list)

    def isolated(self, where: str, fn: Callable[[], None]) -> None:
        """Run one file's or member's scan; whatever it raises becomes a hit about it."""
        try:
            fn()
        except _LimitError as exc:
            self.hits.append(Hit(HitKind.UNSCANNABLE, where, f"scan limit reached: {exc}"))
        except Exception as exc:  # noqa: BLE001 - isolation point: one crafted input, one hit
            self.hits.append(Hit(HitKind.UNPARSABLE, where, f"{type(exc).__name__}: {exc}"))

    def blob(self, stream: IO[bytes], where: str, name: str, depth: int) -> None:
        """Scan one seekable stream: sniff its format from its bytes and dispatch."""
        head = stream.read(512)
        stream.seek(0)
        for magic, what in _UNSCANNABLE_MAGIC:
            if head.startswith(magic):
                self.hits.append(Hit(HitKind.UNSCANNABLE, where, f"{what}: R04 cannot open it"))
                return
        container = self._container(head)
        if container is not None:
            if depth >= self.limits.max_depth:
                self.hits.append(
                    Hit(HitKind.UNSCANNABLE, where, f"archives nested over {depth} levels")
                )
                return
            container(stream, where, name, depth + 1)
            return
        if head.startswith(b"\x93NUMPY"):
            self._npy(stream, where)
            return
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".safetensors" or (head[8:9] == b"{" and _is_safetensors(head, stream)):
            problems = safetensors_header_problems(stream, _size(stream))
            self.hits.append(Hit(HitKind.SAFETENSORS, where, problems=tuple(problems)))
            return
        claimed = looks_like_pickle(head) or suffix in _CLAIMED_SUFFIXES
        self._pickle(stream, where, name, depth, claimed=claimed)

    def _container(self, head: bytes) -> Callable[[IO[bytes], str, str, int], None] | None:
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            return self._zip
        if head[257:262] == b"ustar":
            return self._tar
        if head.startswith(b"\x1f\x8b"):
            return self._decompressed("gzip")
        if head.startswith(b"BZh"):
            return self._decompressed("bz2")
        if head.startswith(b"\xfd7zXZ\x00"):
            return self._decompressed("xz")
        return None

    def _pickle(
        self, stream: IO[bytes], where: str, name: str, depth: int, *, claimed: bool
    ) -> None:
        report = scan_pickle(self._in_memory(stream) if claimed else stream, claimed=claimed)
        if report.plausible and (claimed or report.imports):
            self.hits.append(Hit(HitKind.PICKLE, where, pickle=report))
            if report.error and report.error.startswith("scan limit"):
                return
            stream.seek(0)
            if zipfile.is_zipfile(stream) and depth < self.limits.max_depth:
                # A pickle with a zip appended: torch.load reads the pickle, zip readers the rest.
                self._zip(stream, where, name, depth + 1)
        elif claimed:
            self.hits.append(
                Hit(
                    HitKind.UNPARSABLE,
                    where,
                    "content matches no format R04 reads (pickle, zip, tar, safetensors, npy): "
                    f"{report.error or 'empty'}",
                )
            )

    def _in_memory(self, stream: IO[bytes]) -> IO[bytes]:
        """The stream's bytes when they fit `_IN_MEMORY` and the budget (genops asks for the
        position at every opcode: a BytesIO answers in C, a chain of wrappers in Python), else
        the stream itself, read again from the start."""
        # The margin leaves room for what the buffers read ahead of the bytes asked for.
        cap = min(_IN_MEMORY, self.budget.limit - self.budget.used - (1 << 20))
        if cap <= 0:
            return stream
        data = stream.read(cap + 1)
        if len(data) <= cap:
            return io.BytesIO(data)
        self.budget.used -= len(data)  # read again by the streaming scan: charge it once
        stream.seek(0)
        return stream

    def _npy(self, stream: IO[bytes], where: str) -> None:
        from numpy.lib import format as npf

        version = npf.read_magic(stream)
        if version == (1, 0):
            _, _, dtype = npf.read_array_header_1_0(stream)
        else:  # 2.0 and 3.0 share the header layout (3.0 only allows UTF-8 field names)
            _, _, dtype = npf.read_array_header_2_0(stream)
        if not dtype.hasobject:
            return
        # An object array is stored as a pickle after the header: scan it from there.
        window = cast("IO[bytes]", _Window(stream, stream.tell()))
        report = scan_pickle(window, claimed=True)
        self.hits.append(Hit(HitKind.PICKLE, where, "numpy object array", pickle=report))

    def _member(self, opener: Callable[[], IO[bytes]], where: str, name: str, depth: int) -> None:
        def run() -> None:
            with opener() as raw:
                self.blob(_metered(raw, self.budget), where, name, depth)

        self.isolated(where, run)

    def _zip(self, stream: IO[bytes], where: str, name: str, depth: int) -> None:
        try:
            zf = zipfile.ZipFile(stream)
        except _LimitError:
            raise
        except (zipfile.BadZipFile, _StreamError, OSError, ValueError, EOFError) as exc:
            self.hits.append(Hit(HitKind.UNPARSABLE, where, f"corrupt zip: {exc}"))
            self._zip_local(stream, where, depth, start=0, follow=True)
            return
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            for info in infos[: self.limits.max_members]:
                self._zip_member(stream, zf, info, where, depth)
            if len(infos) > self.limits.max_members:
                self.hits.append(
                    Hit(HitKind.UNSCANNABLE, where, f"over {self.limits.max_members} members")
                )

    def _zip_member(
        self, stream: IO[bytes], zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, depth: int
    ) -> None:
        inner = f"{where}!{display_name(info.filename)}"

        def run() -> None:
            try:
                if info.flag_bits & 0x1:
                    raise NotImplementedError("encrypted zip member")
                with zf.open(info) as raw:
                    self.blob(_metered(raw, self.budget), inner, info.filename, depth)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, _StreamError) as exc:
                # Names that disagree with the local header, a bad CRC, flags Python refuses:
                # lenient readers (torch's included) may still load the entry, so read it raw
                # where the directory says it is.
                kind = HitKind.UNSCANNABLE if info.flag_bits & 0x1 else HitKind.UNPARSABLE
                self.hits.append(Hit(kind, inner, f"zip member: {exc}"))
                self._zip_local(stream, where, depth, start=info.header_offset, follow=False)

        self.isolated(inner, run)

    def _zip_local(
        self, stream: IO[bytes], where: str, depth: int, *, start: int, follow: bool
    ) -> None:
        """Read local file entries from `start`, ignoring the central directory (as lenient
        readers do): one entry, or every entry in a row when `follow`."""
        for entry_name, payload in _local_entries(stream, start, follow, self.limits.max_members):
            inner = f"{where}!{display_name(entry_name)}"
            if isinstance(payload, str):
                self.hits.append(Hit(HitKind.UNSCANNABLE, inner, payload))
                continue
            self._member(functools.partial(io.BytesIO, payload), inner, entry_name, depth)

    def _tar(self, stream: IO[bytes], where: str, name: str, depth: int) -> None:
        import tarfile

        try:
            tf = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - closed by `with tf` below
        except (tarfile.TarError, _StreamError) as exc:
            self.hits.append(Hit(HitKind.UNPARSABLE, where, f"corrupt tar: {exc}"))
            return
        with tf:
            for count, member in enumerate(tf):
                if count >= self.limits.max_members:
                    self.hits.append(
                        Hit(HitKind.UNSCANNABLE, where, f"over {self.limits.max_members} members")
                    )
                    return
                if not member.isfile():
                    continue
                inner = f"{where}!{display_name(member.name)}"

                def opener(member: tarfile.TarInfo = member) -> IO[bytes]:
                    handle = tf.extractfile(member)
                    assert handle is not None
                    return handle

                self._member(opener, inner, member.name, depth)

    def _decompressed(self, codec: str) -> Callable[[IO[bytes], str, str, int], None]:
        def scan(stream: IO[bytes], where: str, name: str, depth: int) -> None:
            import bz2
            import gzip
            import lzma

            openers: dict[str, Callable[[], Any]] = {
                # `_member` opens these in a `with` block.
                "gzip": lambda: gzip.GzipFile(fileobj=stream, mode="rb"),
                "bz2": lambda: bz2.BZ2File(stream),
                "xz": lambda: lzma.LZMAFile(stream),  # noqa: SIM115
            }
            inner_name = PurePosixPath(name).stem
            self._member(openers[codec], f"{where}!{display_name(inner_name)}", inner_name, depth)

        return scan


class _Window(io.RawIOBase):
    """The tail of a seekable stream from `offset`, seen as a stream of its own."""

    def __init__(self, raw: IO[bytes], offset: int) -> None:
        super().__init__()
        self._raw, self._offset = raw, offset
        raw.seek(offset)

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._raw.readline(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = self._offset if whence == 0 else 0
        return self._raw.seek(offset + base, whence) - self._offset

    def tell(self) -> int:
        return self._raw.tell() - self._offset

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


_LOCAL = struct.Struct("<4s5H3L2H")


def _local_entries(
    stream: IO[bytes], start: int, follow: bool, max_entries: int
) -> list[tuple[str, bytes | str]]:
    """(name, bytes or why not) of zip local entries read from `start` without the directory."""
    out: list[tuple[str, bytes | str]] = []
    stream.seek(start)
    while len(out) < max_entries:
        head = stream.read(_LOCAL.size)
        if len(head) < _LOCAL.size:
            break
        sig, _, flags, method, _, _, _, csize, _, nlen, elen = _LOCAL.unpack(head)
        if sig != b"PK\x03\x04":
            break
        name = stream.read(nlen).decode("utf-8", "surrogateescape")
        stream.read(elen)
        # Flags are ignored on purpose (encryption included): the bytes are scanned as they are.
        if method == 0 and not flags & 0x8:
            out.append((name, stream.read(csize)))
        elif method == 8:
            out.append((name, _inflate(stream)))
        else:
            out.append((name, f"zip member with compression method {method} and no size"))
            break
        if not follow:
            break
    return out


def _inflate(stream: IO[bytes]) -> bytes:
    """A raw deflate stream read up to its end (the entry's size may be unknown)."""
    d = zlib.decompressobj(-15)
    out = bytearray()
    while not d.eof:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        out += d.decompress(chunk, _MAX_READ - len(out))
        if len(out) >= _MAX_READ:
            raise _LimitError(f"a zip entry of over {_MAX_READ >> 20} MiB")
    return bytes(out)


def scan_file(path: Path, where: str, limits: ScanLimits) -> list[Hit]:
    """Every hit in one file; a file the scan cannot read or parse is itself a hit."""
    scan = _Scan(limits=limits, budget=_Budget(limits.max_bytes))

    def run() -> None:
        with path.open("rb") as fh:
            scan.blob(_metered(fh, scan.budget), where, path.name, 0)

    scan.isolated(where, run)
    return scan.hits
