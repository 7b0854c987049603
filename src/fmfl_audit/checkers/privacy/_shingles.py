"""Keyed word k-gram ("shingle") hashing, client fingerprints and the cross-client leakage index.

Normalisation (`NORMALIZATION`): Unicode NFKC, case-folded, then the `\\w+` word tokens in order; a
shingle is `k` consecutive words joined by one space. Its hash is the first 8 bytes of
BLAKE2b(shingle, key=K), read as a little-endian uint64, where K is derived from the key material
shared by the auditor and the clients (`derive_key`).

**Fingerprint file** (what `fmfl-audit fingerprint` writes, what `clients[].fingerprint` names), a
JSON object:

    {"format": "fmfl-audit-fingerprint", "version": 1,
     "normalization": "nfkc-casefold-words-v1", "hash": "blake2b-64-keyed", "k": 8,
     "key_check": "<16 hex>", "records": 1200, "distinct_shingles": 20511,
     "hashes": "<base64 of the sorted distinct uint64 hashes, little-endian>"}

`key_check` is BLAKE2b(constant, key=K): it lets the auditor see that both sides used the same key
without revealing the key.

What a fingerprint reveals: the number of records and of distinct shingles, and - to anyone
holding the key - whether a chosen k-word sequence occurs in the data (a dictionary attack: guess
texts, hash them, compare). Without the key the hashes are pseudo-random and reveal nothing about
the text. It contains no raw text, no word order beyond the k-gram, and no record boundaries. The
key is never stored in the fingerprint; keep it as secret as the data it protects.

The index maps each distinct shingle hash to a bitmask of *owners* (clients and the server) whose
data holds it; it is built from sorted numpy arrays (8 bytes per distinct shingle plus the mask),
so memory grows with the number of distinct shingles, never with the number of probes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmfl_audit.errors import CheckerError, InputError

FORMAT = "fmfl-audit-fingerprint"
VERSION = 1
NORMALIZATION = "nfkc-casefold-words-v1"
HASH_NAME = "blake2b-64-keyed"
KEY_ENV = "FMFL_AUDIT_FINGERPRINT_KEY"
_WORD = re.compile(r"\w+")
_COMPACT_AT = 1 << 21
"""Pending hashes per source before they are deduplicated (bounds memory while indexing)."""


def derive_key(material: bytes) -> bytes:
    """The 32-byte BLAKE2b key derived from key material of any length."""
    if not material:
        raise CheckerError("the fingerprint key is empty")
    return hashlib.blake2b(material, digest_size=32, person=b"fmfl-fp-key-v1").digest()


def key_check(key: bytes) -> str:
    """A public check value of the key (equal keys give equal values; reveals nothing else)."""
    return hashlib.blake2b(b"fmfl-audit fingerprint key check", key=key, digest_size=8).hexdigest()


def load_key(*, key_file: Path | None = None, env: str = KEY_ENV) -> bytes | None:
    """The derived key from a file (stripped) or an environment variable; None when neither."""
    if key_file is not None:
        try:
            material = key_file.read_bytes().strip()
        except OSError as exc:
            raise InputError(
                f"{key_file}: cannot read the fingerprint key ({exc.strerror})"
            ) from None
        return derive_key(material)
    value = os.environ.get(env)
    if value:
        return derive_key(value.encode("utf-8"))
    return None


def normalised_words(text: str) -> list[str]:
    """The normalised words of a text (what shingles are made of)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def word_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word in the NFKC form of `text` (equal to `text` for ordinary input),
    aligned with `normalised_words` except where case folding changes a word's extent."""
    return [m.span() for m in _WORD.finditer(unicodedata.normalize("NFKC", text))]


class ShingleHasher:
    """Keyed 64-bit hashes of the k-grams of texts."""

    def __init__(self, key: bytes, k: int) -> None:
        # Copying a keyed state skips re-absorbing the key block for every shingle.
        self._base = hashlib.blake2b(digest_size=8, key=key)
        self.k = k

    def digests(self, words: list[str]) -> bytes:
        """The concatenated 8-byte digests of every k-gram of `words` (empty when too short)."""
        k, base = self.k, self._base
        out = []
        for i in range(len(words) - k + 1):
            h = base.copy()
            h.update(" ".join(words[i : i + k]).encode("utf-8"))
            out.append(h.digest())
        return b"".join(out)

    def hashes(self, texts: Iterable[str]) -> Any:
        """uint64 array of the shingle hashes of many texts (duplicates kept)."""
        import numpy as np

        buf = b"".join([self.digests(normalised_words(t)) for t in texts])
        return np.frombuffer(buf, dtype="<u8").astype(np.uint64)


def text_hashes(texts: Iterable[str], k: int, key: bytes) -> Any:
    """uint64 array of the shingle hashes of many texts (duplicates kept)."""
    return ShingleHasher(key, k).hashes(texts)


def sorted_unique(a: Any) -> Any:
    """Sorted distinct values of a uint64 array (a sort beats numpy's hash-based `unique` here)."""
    import numpy as np

    a = np.sort(a)
    if len(a) == 0:
        return a
    return a[np.r_[True, a[1:] != a[:-1]]]


class HashSet:
    """A growing set of uint64 hashes, deduplicated in chunks (bounded extra memory)."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._done = np.empty(0, dtype=np.uint64)
        self._pending: list[Any] = []
        self._pending_n = 0

    def add(self, hashes: Any) -> None:
        """Add an array of hashes."""
        self._pending.append(hashes)
        self._pending_n += len(hashes)
        if self._pending_n >= _COMPACT_AT:
            self._compact()

    def _compact(self) -> None:
        if self._pending:
            np = self._np
            self._done = sorted_unique(np.concatenate([self._done, *self._pending]))
            self._pending, self._pending_n = [], 0

    def array(self) -> Any:
        """The sorted distinct hashes."""
        self._compact()
        return self._done


@dataclass(frozen=True)
class Fingerprint:
    """A loaded fingerprint file."""

    k: int
    key_check: str
    records: int
    hashes: Any
    """Sorted distinct uint64 hashes."""

    def to_json(self) -> str:
        """The documented JSON form."""
        import numpy as np

        data = np.asarray(self.hashes, dtype="<u8").tobytes()
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "normalization": NORMALIZATION,
                "hash": HASH_NAME,
                "k": self.k,
                "key_check": self.key_check,
                "records": self.records,
                "distinct_shingles": len(self.hashes),
                "hashes": base64.b64encode(data).decode("ascii"),
            },
            indent=None,
        )


def build_fingerprint(texts: Iterable[list[str]], *, k: int, key: bytes) -> Fingerprint:
    """A fingerprint of batches of texts."""
    hs = HashSet()
    hasher = ShingleHasher(key, k)
    records = 0
    for batch in texts:
        records += len(batch)
        hs.add(hasher.hashes(batch))
    return Fingerprint(k=k, key_check=key_check(key), records=records, hashes=hs.array())


def read_fingerprint(path: Path, display: str) -> Fingerprint:
    """Load and validate a fingerprint file (InputError with the reason when it is not one)."""
    import numpy as np

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{display}: not a readable fingerprint file ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InputError(f"{display}: not an fmfl-audit fingerprint (format != {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise InputError(
            f"{display}: fingerprint version {obj.get('version')!r} is not supported "
            f"(expected {VERSION}); re-run `fmfl-audit fingerprint`"
        )
    if obj.get("normalization") != NORMALIZATION or obj.get("hash") != HASH_NAME:
        raise InputError(f"{display}: unknown normalization or hash in the fingerprint")
    try:
        raw = base64.b64decode(obj["hashes"], validate=True)
        k, records, check = int(obj["k"]), int(obj["records"]), str(obj["key_check"])
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{display}: malformed fingerprint ({exc})") from None
    if len(raw) % 8:
        raise InputError(f"{display}: malformed fingerprint (hash bytes not a multiple of 8)")
    hashes = sorted_unique(np.frombuffer(raw, dtype="<u8").astype(np.uint64))
    return Fingerprint(k=k, key_check=check, records=records, hashes=hashes)


@dataclass
class LeakIndex:
    """Sorted distinct shingle hashes with the bitmask (words of 64 bits) of owners holding each."""

    owners: list[str]
    hashes: Any
    masks: Any
    """uint64 array, shape (len(hashes), words)."""
    _filter: Any = field(default=None, init=False, repr=False)
    _shift: int = field(default=64, init=False, repr=False)

    def __post_init__(self) -> None:
        import numpy as np

        # A one-hash bitmap of ~8 bits per indexed shingle: most probes miss the index, and one
        # look-up in the bitmap is far cheaper than a binary search over a large sorted array.
        n_bits = 1 << max(10, int(max(1, len(self.hashes)) * 8 - 1).bit_length())
        self._shift = 64 - (n_bits.bit_length() - 1)
        self._filter = np.zeros(n_bits // 8, dtype=np.uint8)
        for lo in range(0, len(self.hashes), _COMPACT_AT):  # chunks bound the temporaries
            slot = self.hashes[lo : lo + _COMPACT_AT] >> np.uint64(self._shift)
            bit = np.left_shift(np.uint8(1), (slot & np.uint64(7)).astype(np.uint8))
            np.bitwise_or.at(self._filter, slot >> np.uint64(3), bit)

    def lookup(self, probe: Any) -> Any:
        """Masks of `probe` hashes; all-zero rows for hashes not indexed."""
        import numpy as np

        words = self.masks.shape[1]
        out = np.zeros((len(probe), words), dtype=np.uint64)
        if len(self.hashes) == 0 or len(probe) == 0:
            return out
        slot = probe >> np.uint64(self._shift)
        maybe = np.flatnonzero(
            (self._filter[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1
        )
        cand = probe[maybe]
        pos = np.minimum(np.searchsorted(self.hashes, cand), len(self.hashes) - 1)
        hit = self.hashes[pos] == cand
        out[maybe[hit]] = self.masks[pos[hit]]
        return out

    def owners_of(self, mask_row: Any) -> Iterator[int]:
        """Owner indices whose bit is set in one mask row."""
        for w, word in enumerate(mask_row):
            v = int(word)
            while v:
                low = v & -v
                yield w * 64 + low.bit_length() - 1
                v ^= low


@dataclass
class LeakIndexBuilder:
    """Collects each owner's distinct shingles, then merges them in one sort."""

    owners: list[str] = field(default_factory=list)
    sets: dict[int, HashSet] = field(default_factory=dict)

    def owner(self, name: str) -> int:
        """The index (bit) of an owner, added on first use."""
        if name not in self.owners:
            self.owners.append(name)
            self.sets[len(self.owners) - 1] = HashSet()
        return self.owners.index(name)

    def add(self, owner: int, hashes: Any) -> None:
        """Record shingle hashes held by an owner."""
        self.sets[owner].add(hashes)

    def build(self) -> LeakIndex:
        """The merged index."""
        import numpy as np

        words = max(1, (len(self.owners) + 63) // 64)
        parts = [(i, s.array()) for i, s in sorted(self.sets.items())]
        self.sets = {}  # the per-owner arrays are merged below; let them go
        total = sum(len(a) for _, a in parts)
        all_h = np.empty(total, dtype=np.uint64)
        all_owner = np.empty(total, dtype=np.uint32)
        pos = 0
        for i, arr in parts:
            all_h[pos : pos + len(arr)] = arr
            all_owner[pos : pos + len(arr)] = i
            pos += len(arr)
        del parts
        order = np.argsort(all_h, kind="stable")
        all_h = all_h[order]
        all_owner = all_owner[order]
        del order
        if total == 0:
            return LeakIndex(self.owners, all_h, np.zeros((0, words), dtype=np.uint64))
        starts = np.flatnonzero(np.r_[True, all_h[1:] != all_h[:-1]])
        masks = np.empty((len(starts), words), dtype=np.uint64)
        for w in range(words):
            # One 64-owner word at a time keeps the temporary at 8 bytes per entry.
            bit = np.left_shift(np.uint64(1), (all_owner % 64).astype(np.uint64))
            bit[(all_owner // 64) != w] = 0
            masks[:, w] = np.bitwise_or.reduceat(bit, starts)
        return LeakIndex(self.owners, all_h[starts], masks)
