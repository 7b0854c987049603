"""JUnit XML: parses, one test case per rule, one suite per area, counts that add up."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fmfl_audit.report.junit import JunitRenderer, xml_safe

from .builders import HOSTILE, sample_report


def _root() -> ET.Element:
    return ET.fromstring(JunitRenderer().render(sample_report()).encode("utf-8"))


def test_parses_with_totals() -> None:
    root = _root()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "9",
        "failures": "4",
        "errors": "1",
        "skipped": "1",
    }


def test_one_suite_per_area_with_counts() -> None:
    suites = {s.get("name"): s for s in _root().findall("testsuite")}
    assert list(suites) == ["robustness", "privacy", "fairness"]
    counts = {
        name: tuple(int(s.get(k) or -1) for k in ("tests", "failures", "errors", "skipped"))
        for name, s in suites.items()
    }
    assert counts == {"robustness": (4, 1, 1, 1), "privacy": (3, 2, 0, 0), "fairness": (2, 1, 0, 0)}
    for s in suites.values():
        cases = s.findall("testcase")
        assert len(cases) == int(s.get("tests") or -1)
        assert len([c for c in cases if c.find("failure") is not None]) == int(
            s.get("failures") or 0
        )
        assert {c.get("classname") for c in cases} == {s.get("name")}


def test_case_contents() -> None:
    cases = {c.get("name", "").split(" ")[0]: c for c in _root().iter("testcase")}
    assert cases["FMFL-P01"].get("name") == "FMFL-P01 Ensure no PII in synthetic data"
    failure = cases["FMFL-P01"].find("failure")
    assert failure is not None
    assert failure.get("message") == "2 finding(s), worst high"
    assert "37 EMAIL_ADDRESS value(s)" in (failure.text or "")
    assert "clients/b/synthetic.jsonl:12" in (failure.text or "")
    skipped = cases["FMFL-R02"].find("skipped")
    assert skipped is not None and skipped.get("message") == "missing input: clients[].update"
    error = cases["FMFL-R03"].find("error")
    assert error is not None and "not UTF-8" in (error.get("message") or "")
    # Waived: the rule passes, and the waived finding is still on record.
    f06 = cases["FMFL-F06"]
    assert f06.find("failure") is None
    out = f06.find("system-out")
    assert out is not None and "pilot school hosts the GPU cluster" in (out.text or "")
    assert len(list(cases["FMFL-R04"])) == 0  # passed: an empty test case


def test_waivers_listed_with_expiry() -> None:
    props = [p.get("value") or "" for p in _root().iter("property") if p.get("name") == "waiver"]
    assert len(props) == 2
    assert any("EXPIRED on 2026-10-01" in p for p in props)
    assert any("FMFL-F06 client:school-a until 2027-03-31" in p for p in props)


def test_hostile_text_round_trips_escaped() -> None:
    text = JunitRenderer().render(sample_report())
    assert "<script>" not in text
    failure_texts = "".join(f.text or "" for f in _root().iter("failure"))
    assert '<script>alert("x")</script>' in failure_texts  # parsed back intact
    assert "\x07" not in text


def test_xml_safe() -> None:
    assert xml_safe("a\x00b\x1fc\td\ne") == "a\ufffdb\ufffdc\td\ne"
    assert xml_safe(HOSTILE).startswith("<script>")
