"""`fmfl-audit probe` against a scripted HTTP server on 127.0.0.1 (Python's http.server): the
request it sends, retries and backoff, resuming, the budget, dry runs, and every way an endpoint
can fail (exit 2 with a clear message, the API key never shown)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.probe.builders import APPROVED_PROMPT, endpoint, write_deployment
from tests.probe.servers import free_port
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.probe import ProbeError, plan_probes, run_probes
from fmfl_audit.probe.transcript import Entry, iter_entries

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])
runner = CliRunner()
KEY = "sk-test-0123456789abcdefSECRET"
Reply = tuple[int, dict[str, str], str]


def completion(text: str) -> Reply:
    body = {
        "id": "x",
        "object": "chat.completion",
        "model": "stub",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    return 200, {}, json.dumps(body)


@dataclass
class Stub:
    """A chat endpoint whose replies come from `script` (called with the request number)."""

    script: Callable[[int, dict[str, Any]], Reply]
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def stub_server() -> Iterator[Callable[..., Stub]]:
    servers: list[ThreadingHTTPServer] = []

    def start(script: Callable[[int, dict[str, Any]], Reply], delay_s: float = 0.0) -> Stub:
        stub = Stub(script=script, delay_s=delay_s)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    n = len(stub.bodies)
                    stub.bodies.append(body)
                    stub.headers.append(dict(self.headers))
                time.sleep(stub.delay_s)
                status, headers, text = stub.script(n, body)
                payload = text.encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        stub.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return stub

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def deployment(folder: Path, base_url: str, **ep: Any) -> Path:
    target = {**endpoint(base_url, "stub-model", 0), "api_key_env": "FM_KEY", **ep}
    return write_deployment(
        folder, target=target, probe={"suites": ["safety"], "prompts_per_suite": 2}
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_KEY", KEY)


def transcript(folder: Path) -> list[dict[str, Any]]:
    path = folder / "probes" / "transcript.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_probe_sends_the_suite_and_writes_the_transcript(tmp_path: Path, stub_server: Any) -> None:
    stub = stub_server(lambda n, body: completion(f"answer {n}"))
    manifest = deployment(tmp_path, stub.base_url)
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 0, res.stderr
    assert "4 probe(s) in 1 suite(s) (safety) -> 4 request(s) to target " in res.stderr
    assert (
        "estimate for 4 request(s): about " in res.stderr and "at most 64 completion" in res.stderr
    )
    assert "4 answer(s) written, 0 request(s) failed" in res.stderr
    # What went out: the approved prompt as system message, greedy, the key only as a header.
    body = stub.bodies[0]
    assert body["model"] == "stub-model" and body["temperature"] == 0.0 and body["max_tokens"] == 16
    assert body["messages"][0] == {"role": "system", "content": APPROVED_PROMPT}
    assert {h["Authorization"] for h in stub.headers} == {f"Bearer {KEY}"}
    lines = transcript(tmp_path)
    assert sorted(x["meta"]["kind"] for x in lines) == ["harmful", "harmful", "safe", "safe"]
    assert all(x["status"] == "ok" and x["endpoint"]["role"] == "target" for x in lines)
    assert {x["response"]["text"] for x in lines} == {f"answer {n}" for n in range(4)}
    assert KEY not in (tmp_path / "probes" / "transcript.jsonl").read_text()
    assert KEY not in res.stdout + res.stderr
    # Resuming: everything is answered, nothing is sent again.
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 0 and "nothing to send" in res.stderr and len(stub.bodies) == 4


def test_budget_dry_run_and_resume_after_an_interruption(tmp_path: Path, stub_server: Any) -> None:
    stub = stub_server(lambda n, body: completion("fine"))
    manifest = deployment(tmp_path, stub.base_url)
    res = runner.invoke(app, ["probe", str(manifest), "--dry-run"])
    assert res.exit_code == 0 and stub.bodies == []
    rows = [r.split("\t") for r in res.stdout.splitlines()]
    assert [r[0] for r in rows] == ["target"] * 4 and {r[2] for r in rows} == {"greedy"}
    assert rows[0][1].startswith("safety/harmful/")
    res = runner.invoke(app, ["probe", str(manifest), "--max-requests", "3"])
    assert res.exit_code == 0 and len(stub.bodies) == 3
    assert "1 request(s) left by --max-requests: run again to resume" in res.stderr
    # An interrupted run keeps its lines, even a half-written last one.
    path = tmp_path / "probes" / "transcript.jsonl"
    path.write_text(path.read_text()[:-20])
    plan = plan_probes(load_manifest(manifest))
    assert (len(plan.requests), plan.answered) == (4, 2)
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 0 and len(stub.bodies) == 5
    assert "2 already answered" in res.stderr
    entries = [e for _, e in iter_entries(path)]
    assert sum(isinstance(e, ValueError) for e in entries) == 1  # the cut line, kept and skipped
    assert len({e.probe_id for e in entries if isinstance(e, Entry) and e.status == "ok"}) == 4


def test_rate_limited_and_failing_requests_are_retried(tmp_path: Path, stub_server: Any) -> None:
    def script(n: int, body: dict[str, Any]) -> Reply:
        if n == 1:
            return 429, {"Retry-After": "0"}, '{"error": "slow down"}'
        if n == 2:
            return 503, {}, '{"error": "busy"}'
        return completion("ok")

    stub = stub_server(script)
    manifest = deployment(tmp_path, stub.base_url)
    run = run_probes(plan_probes(load_manifest(manifest)))
    assert (run.sent, run.ok, run.failed) == (4, 4, 0)
    assert len(stub.bodies) == 6
    attempts = sorted(x["timing"]["attempts"] for x in transcript(tmp_path))
    assert attempts == [1, 1, 1, 3]


def test_errors_after_retries_are_recorded_and_sent_again(tmp_path: Path, stub_server: Any) -> None:
    stub = stub_server(lambda n, body: completion("ok") if n != 1 else (500, {}, "boom"))
    manifest = deployment(tmp_path, stub.base_url, max_retries=0)
    run = run_probes(plan_probes(load_manifest(manifest)))
    assert (run.sent, run.ok, run.failed) == (4, 3, 1)
    assert "answered HTTP 500: boom" in run.errors[0]
    assert sorted(x["status"] for x in transcript(tmp_path)) == ["error", "ok", "ok", "ok"]
    assert len(plan_probes(load_manifest(manifest)).pending) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, f'{{"error": "invalid key {KEY}"}}', "refused the credentials (HTTP 401"),
        (404, '{"error": "model stub-model not found"}', "rejected the request (HTTP 404"),
        (400, '{"detail": "Server is pinned to x"}', "rejected the request (HTTP 400"),
    ],
)
def test_an_unusable_endpoint_exits_2(
    tmp_path: Path, stub_server: Any, status: int, body: str, expected: str
) -> None:
    stub = stub_server(lambda n, b: (status, {}, body))
    manifest = deployment(tmp_path, stub.base_url)
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 2
    assert "error: probing stopped: " in res.stderr and expected in res.stderr
    assert "Traceback" not in res.stderr and KEY not in res.stderr
    assert len(stub.bodies) == 1  # the first request goes alone
    if status == 401:
        assert "invalid key <api-key>" in res.stderr and "check $FM_KEY" in res.stderr
    assert transcript(tmp_path) == []


def test_an_echoed_key_straddling_the_detail_cut_is_replaced_whole(
    tmp_path: Path, stub_server: Any
) -> None:
    # The detail is cut at 300 characters; the key starts at 296 (after `{"error": "` and filler).
    body = '{"error": "' + "x" * 285 + KEY + '"}'
    assert body.index(KEY) == 296
    stub = stub_server(lambda n, b: (401, {}, body))
    res = runner.invoke(app, ["probe", str(deployment(tmp_path, stub.base_url))])
    assert res.exit_code == 2
    assert "x" * 285 + "<api-key>" in res.stderr and KEY[:4] not in res.stderr


def test_unreachable_endpoint_timeout_and_missing_key(
    tmp_path: Path, stub_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    res = runner.invoke(app, ["probe", str(deployment(tmp_path / "a", closed, max_retries=1))])
    assert res.exit_code == 2 and f"cannot connect to {closed}/chat/completions" in res.stderr
    slow = stub_server(lambda n, b: completion("late"), delay_s=1.0)
    manifest = deployment(tmp_path / "b", slow.base_url, timeout_s=0.2, max_retries=0)
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 2 and "no answer within 0.2 s" in res.stderr
    monkeypatch.delenv("FM_KEY")
    res = runner.invoke(app, ["probe", str(manifest)])
    assert res.exit_code == 2
    assert "environment variable FM_KEY (foundation_model endpoint api_key_env" in res.stderr


def test_too_many_failures_in_a_row_stop_the_run(tmp_path: Path, stub_server: Any) -> None:
    stub = stub_server(lambda n, b: completion("ok") if n == 0 else (502, {}, "bad gateway"))
    manifest = write_deployment(
        tmp_path,
        target={**endpoint(stub.base_url, "m", 0), "max_retries": 0},
        probe={"suites": ["safety"], "prompts_per_suite": 6},
    )
    with pytest.raises(ProbeError, match=r"5 requests in a row failed, the last: .*HTTP 502"):
        run_probes(plan_probes(load_manifest(manifest)))
    assert len(stub.bodies) == 6
    assert [x["status"] for x in transcript(tmp_path)].count("ok") == 1


def refusal_reply(refusal: Any, content: Any = None) -> Reply:
    """An OpenAI-style refused completion: `content` null, the refusal in `message.refusal`."""
    message = {"role": "assistant", "content": content, "refusal": refusal}
    body = {"model": "stub", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    return 200, {}, json.dumps(body)


def test_an_api_refusal_is_recorded_as_a_refused_answer(tmp_path: Path, stub_server: Any) -> None:
    # A wording no refusal marker knows: only the API's flag says it refused.
    said = "Request withheld."
    stub = stub_server(lambda n, body: refusal_reply(said))
    target = {**endpoint(stub.base_url, "stub-model", 0), "api_key_env": "FM_KEY"}
    manifest = write_deployment(
        tmp_path,
        target=target,
        probe={"suites": ["safety"], "prompts_per_suite": 5},
        synthetic_data=False,
    )
    run = run_probes(plan_probes(load_manifest(manifest)))
    assert (run.sent, run.ok, run.failed) == (10, 10, 0)
    lines = transcript(tmp_path)
    assert {(x["response"]["text"], x["response"]["refusal"]) for x in lines} == {(said, True)}
    report = Auditor(load_manifest(manifest), only=["FMFL-R02"]).run()
    metrics = report.rule("FMFL-R02").metrics["fm:endpoint"]
    assert metrics["harmful_refusal_rate"] == 1.0
    assert metrics["safe_refusal_rate"] == 1.0
    # The same words as plain content are not a refusal: the flag made the difference.
    plain = [{**x, "response": {**x["response"], "refusal": False}} for x in transcript(tmp_path)]
    (tmp_path / "probes" / "transcript.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in plain)
    )
    report = Auditor(load_manifest(manifest), only=["FMFL-R02"]).run()
    assert report.rule("FMFL-R02").metrics["fm:endpoint"]["harmful_refusal_rate"] == 0.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (refusal_reply(None, content=5), "message.content is not text (got int)"),
        (refusal_reply(["no"]), "message.refusal is not text (got list)"),
    ],
)
def test_a_reply_whose_content_is_not_text_is_malformed(
    tmp_path: Path, stub_server: Any, reply: Reply, expected: str
) -> None:
    stub = stub_server(lambda n, body: completion("fine") if n == 0 else reply)
    manifest = deployment(tmp_path, stub.base_url, max_retries=0)
    run = run_probes(plan_probes(load_manifest(manifest)))
    assert (run.ok, run.failed) == (1, 3)
    assert {e.split(" (target): ")[1] for e in run.errors} == {f"not a chat completion: {expected}"}
    assert sorted(x["status"] for x in transcript(tmp_path)) == ["error", "error", "error", "ok"]
    # The first request goes alone: a malformed first reply stops the run (exit 2).
    stub = stub_server(lambda n, body: reply)
    res = runner.invoke(app, ["probe", str(deployment(tmp_path / "b", stub.base_url))])
    assert res.exit_code == 2 and expected in res.stderr
