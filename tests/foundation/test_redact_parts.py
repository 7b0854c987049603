"""The parts of `redact`: canary matching, overlap resolution, leak offsets, the manifest copy."""

from __future__ import annotations

from pathlib import Path

import yaml

from fmfl_audit.checkers.privacy._shingles import (
    LeakIndexBuilder,
    ShingleHasher,
    normalised_words,
)
from fmfl_audit.checkers.privacy.canary import parse_canary
from fmfl_audit.checkers.registry import checker_map
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.remediation._detect import (
    CanaryMatcher,
    Detectors,
    LeakProbe,
    Redactor,
    Span,
    secret_type,
)
from fmfl_audit.remediation._manifest_copy import relocate, write_manifest_copy


def _canary(fmt: str, secret: str | list[str]) -> object:
    return parse_canary({"format": fmt, "secret": secret}, "c.jsonl:1", 1)


def test_canary_matcher() -> None:
    m = CanaryMatcher(
        [
            _canary("my code is {digits:6}", "493027"),
            _canary("{choice:red|blue} door {digits:3}", ["blue", "042"]),
        ]
    )
    text = "My  code IS 493027. x493027 493027 blue door 042 042 blue"
    got = [(text[s.start : s.end], s.kind) for s in m.spans(text)]
    # The whole canary (case and spacing ignored), a long secret as a token, never a short
    # secret or a choice on its own.
    assert got == [
        ("My  code IS 493027", "CANARY"),
        ("493027", "CANARY"),
        ("blue door 042", "CANARY"),
    ]
    assert CanaryMatcher([]).spans("anything") == []


class _Fixed(Detectors):
    """Detectors that return fixed spans on the first round."""

    def __init__(self, spans: list[Span]) -> None:
        super().__init__(pii=[], scanners=[], canaries=CanaryMatcher([]))
        self.fixed = spans
        self.calls = 0

    def find(self, texts: list[str], *, leak_owner: str | None) -> list[list[Span]]:
        self.calls += 1
        return [list(self.fixed) if self.calls == 1 else [] for _ in texts]


def test_overlaps_leave_no_character_of_any_span() -> None:
    text = "aa mail x@y.org here bb"
    spans = [
        Span(3, 20, "LEAKED_SPAN"),  # contains the e-mail: the e-mail goes with it
        Span(8, 15, "EMAIL_ADDRESS", 0.5),
        Span(18, 23, "PERSON", 0.4),  # overlaps the leak: trimmed to what is outside it
    ]
    detectors = _Fixed(spans)
    [(new, counts)] = Redactor(detectors).redact([text], leak_owner=None)
    assert new == "aa <LEAKED_SPAN><PERSON>"
    assert dict(counts) == {"LEAKED_SPAN": 1, "PERSON": 1}
    assert detectors.calls == 2  # a replaced text is scanned again; nothing more: done
    [(same, none)] = Redactor(_Fixed([])).redact(["clean"], leak_owner=None)
    assert (same, dict(none)) == ("clean", {})


def test_secret_type_names() -> None:
    assert secret_type("AWS Access Key") == "AWS_ACCESS_KEY"
    assert secret_type("Public IP (ipv4)") == "PUBLIC_IP_IPV4"


def _probe(source: str) -> LeakProbe:
    import numpy as np

    key = b"k" * 32
    builder = LeakIndexBuilder()
    hasher = ShingleHasher(key, 3)
    digests = hasher.digests(normalised_words(source))
    builder.add(builder.owner("a"), np.frombuffer(digests, dtype="<u8").astype(np.uint64))
    builder.owner("b")
    return LeakProbe(index=builder.build(), key=key, k=3, common_min_owners=None)


def test_leak_spans_in_characters() -> None:
    probe = _probe("the quick brown fox jumps")
    text = "so The quick brown fox ran"
    [spans] = probe.spans([text], "b")
    assert [(text[s.start : s.end], s.kind) for s in spans] == [
        ("The quick brown fox", "LEAKED_SPAN")
    ]
    assert probe.spans([text], "a") == [[]]  # the owner's own text coming back is no leak
    # A text whose NFKC form differs cannot be mapped back safely: all of it goes.
    odd = "so the quick brown fox ﬁne"
    assert probe.spans([odd], "b") == [[Span(0, len(odd), "LEAKED_SPAN")]]


def test_relocate(tmp_path: Path) -> None:
    base, out = tmp_path / "d", tmp_path / "d" / "red"
    moved = {(base / "s.jsonl").resolve(): (out / "s.jsonl").resolve()}
    assert relocate("s.jsonl", base_dir=base, out_dir=out, moved=moved) == "s.jsonl"
    assert relocate("fm/", base_dir=base, out_dir=out, moved=moved) == "../fm"
    assert relocate("/abs/x.csv", base_dir=base, out_dir=out, moved=moved) == "/abs/x.csv"


def test_manifest_copy_rewrites_packs_and_path_params(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs/extra.yaml").write_text(
        "pack: extra\noverrides:\n  - {id: FMFL-P06, params: {k: 9}}\n", encoding="utf-8"
    )
    (tmp_path / "key.txt").write_text("secret-key\n", encoding="utf-8")
    (tmp_path / "s.jsonl").write_text('{"text": "x"}\n', encoding="utf-8")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "deployment": {"name": "x"},
                "clients": [{"id": "a", "synthetic_data": "s.jsonl"}],
                "policy": {
                    "packs": ["default", "packs/extra.yaml"],
                    "rules": {"FMFL-P06": {"params": {"key_file": "key.txt", "k": 9}}},
                },
            }
        ),
        encoding="utf-8",
    )
    deployment = load_manifest(manifest)
    out = tmp_path / "out"
    out.mkdir()
    write_manifest_copy(
        manifest,
        out / "manifest.yaml",
        ruleset=Auditor(deployment).ruleset(),
        checkers=checker_map(),
        fn=lambda v: relocate(v, base_dir=tmp_path, out_dir=out, moved={}),
    )
    data = yaml.safe_load((out / "manifest.yaml").read_text(encoding="utf-8"))
    assert data["policy"]["packs"] == ["default", "../packs/extra.yaml"]
    assert data["policy"]["rules"]["FMFL-P06"]["params"] == {"key_file": "../key.txt", "k": 9}
    assert data["clients"][0]["synthetic_data"] == "../s.jsonl"
    copy = load_manifest(out / "manifest.yaml")
    assert Auditor(copy).ruleset().get("FMFL-P06").spec.params["k"] == 9


def test_a_text_whose_detections_never_settle_is_replaced_whole() -> None:
    from typing import Any

    from fmfl_audit.remediation._detect import INCOMPLETE, MAX_ROUNDS, Redactor, Span

    class Endless:
        """Finds the first word of every text (and of every placeholder it leaves) forever."""

        def __init__(self) -> None:
            self.calls = 0

        def find(self, texts: list[str], *, leak_owner: str | None) -> list[list[Span]]:
            self.calls += 1
            return [[Span(0, max(1, t.find(" ")), "X")] if t != "clean" else [] for t in texts]

    detectors: Any = Endless()
    out = Redactor(detectors).redact(["alpha beta gamma", "clean"], leak_owner=None)
    assert out[0] == (f"<{INCOMPLETE}>", {"X": MAX_ROUNDS, INCOMPLETE: 1})
    assert out[1] == ("clean", {})
    assert detectors.calls == MAX_ROUNDS + 1
