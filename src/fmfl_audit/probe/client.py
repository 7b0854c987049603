"""A small client for one OpenAI-compatible chat endpoint: timeouts, retries with backoff, a rate
limit, and errors that say what went wrong without ever showing the API key.

httpx does the HTTP; the retry loop is written here (a few lines) because the policy is specific:
429 and 5xx answers and timeouts are retried with exponential backoff and jitter (honouring
`Retry-After`), while a refused connection, a failed authentication or a rejected request are not
worth repeating and end the run (see `FATAL`). Redirects are not followed and proxy settings from
the environment are ignored, so requests go to the endpoint the manifest names and nowhere else.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from fmfl_audit.errors import FmflAuditError, MissingDependencyError
from fmfl_audit.manifest.model import Endpoint
from fmfl_audit.redact import cut_masked

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class ProbeError(FmflAuditError):
    """Probing cannot go on: the endpoint is unreachable, refuses the key, or rejects requests."""


@dataclass(frozen=True)
class Outcome:
    """What one request ended with: the parsed answer or an error message."""

    ok: bool
    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, int] | None = None
    refusal: bool = False
    """The API said the model refused (OpenAI's `message.refusal`); `text` is its refusal."""
    error: str | None = None
    fatal: bool = False
    """The error will not go away by retrying other probes (unreachable, auth, bad model)."""
    attempts: int = 1
    latency_s: float = 0.0


class RateLimiter:
    """At most `per_minute` request starts per minute, spread evenly (thread-safe)."""

    def __init__(self, per_minute: float | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start."""
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


def scrub(text: str, secret: str | None) -> str:
    """`text` with the API key replaced, should a server or library ever echo it."""
    return text.replace(secret, "<api-key>") if secret else text


class ChatClient:
    """Sends chat-completion requests to one endpoint; safe to share between threads."""

    def __init__(self, endpoint: Endpoint, api_key: str | None) -> None:
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("httpx", extra="probe") from None
        self.endpoint = endpoint
        self._key = api_key
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            timeout=httpx.Timeout(endpoint.timeout_s),
            headers=headers,
            follow_redirects=False,
            trust_env=False,
        )
        self._limiter = RateLimiter(endpoint.requests_per_minute)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, body: dict[str, Any]) -> Outcome:
        """POST `body` to the chat URL, retrying what is worth retrying."""
        t0 = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._limiter.wait()
            outcome, retry_after = self._once(body)
            last = attempt > self.endpoint.max_retries
            if outcome.ok or retry_after is None or last:
                latency = round(time.monotonic() - t0, 4)
                return replace(outcome, attempts=attempt, latency_s=latency)
            time.sleep(retry_after if retry_after > 0 else _backoff(attempt))

    def _once(self, body: dict[str, Any]) -> tuple[Outcome, float | None]:
        """One attempt: the outcome, and the delay before a retry (None: do not retry; 0: use
        the backoff)."""
        import httpx

        url = self.endpoint.chat_url
        try:
            resp = self._http.post(url, json=body)
        except httpx.TimeoutException:
            return self._fail(f"no answer within {self.endpoint.timeout_s:g} s from {url}"), 0.0
        except httpx.ConnectError as exc:
            return self._fail(f"cannot connect to {url} ({exc})", fatal=True), 0.0
        except httpx.HTTPError as exc:
            return self._fail(f"request to {url} failed ({type(exc).__name__}: {exc})"), 0.0
        if resp.status_code == 200:
            return self._parse(resp), None
        detail = self._detail(resp)
        if resp.status_code in (401, 403):
            hint = (
                f"check ${self.endpoint.api_key_env}"
                if self.endpoint.api_key_env
                else "the manifest names no api_key_env"
            )
            msg = f"{url} refused the credentials (HTTP {resp.status_code}: {detail}); {hint}"
            return self._fail(msg, fatal=True), None
        if resp.status_code in RETRYABLE_STATUS:
            return self._fail(f"{url} answered HTTP {resp.status_code}: {detail}"), _retry_after(
                resp.headers.get("retry-after")
            )
        # 400, 404, 422...: the request itself is wrong (model name, parameters); retrying the
        # same request cannot help, and every other probe would fail the same way.
        msg = f"{url} rejected the request (HTTP {resp.status_code}: {detail})"
        return self._fail(msg, fatal=resp.status_code in (404, 405)), None

    def _fail(self, message: str, *, fatal: bool = False) -> Outcome:
        return Outcome(ok=False, error=scrub(message, self._key), fatal=fatal)

    def _detail(self, resp: Any) -> str:
        # The key is replaced before the cut: a key cut first no longer matches and shows in part.
        text = scrub(resp.text.strip().replace("\n", " "), self._key)
        return cut_masked(text, 300) if text else resp.reason_phrase

    def _parse(self, resp: Any) -> Outcome:
        try:
            data = resp.json()
            choice = data["choices"][0]
            content = choice["message"].get("content")
            refusal = choice["message"].get("refusal")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            snippet = self._detail(resp)
            return self._fail(f"not a chat completion: {snippet[:200]}")
        # OpenAI-style APIs answer a refused request with `content: null` and the refusal text in
        # `message.refusal`: that is the answer (a refusal), not an empty one. Anything but text
        # (or null) in either field is a malformed reply, not an answer to store as its repr.
        for name, value in (("content", content), ("refusal", refusal)):
            if value is not None and not isinstance(value, str):
                kind = type(value).__name__
                return self._fail(f"not a chat completion: message.{name} is not text (got {kind})")
        refused = bool(refusal and refusal.strip())
        text = content or (refusal if refused else "") or ""
        usage = data.get("usage")
        usage = (
            {k: int(v) for k, v in usage.items() if isinstance(v, int)}
            if isinstance(usage, dict)
            else None
        )
        return Outcome(
            ok=True,
            text=text,
            finish_reason=choice.get("finish_reason"),
            model=data.get("model"),
            usage=usage,
            refusal=refused,
        )


def _backoff(attempt: int) -> float:
    # Exponential backoff with full jitter (AWS architecture blog), capped.
    return random.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1)))


def _retry_after(value: str | None) -> float:
    """Seconds from a `Retry-After` header (delta-seconds form); 0 means use the backoff."""
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0
