"""Audit a Flower federation: record the run while it happens and write the manifest at the end.

Three lines in a Flower app (Message API, `flwr.serverapp.strategy`; flwr 1.22 to 1.42)::

    from fmfl_audit.integrations.flower import AuditedStrategy, fmfl_audit_mod
    strategy = AuditedStrategy(FedAvg(...), out_dir="audit-run")   # in the ServerApp
    app = ClientApp(mods=[fmfl_audit_mod])                          # in the ClientApp

then `fmfl-audit scan audit-run/manifest.yaml`. Client code that talks to a foundation model logs
its prompts and the FM's outputs with `fmfl_audit.integrations.fm_log.FMInteractionLog`, which
does not depend on Flower.
"""

from __future__ import annotations

try:
    import flwr  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fmfl_audit.integrations.flower needs Flower: pip install 'fmfl-audit[flower]'"
    ) from exc

from fmfl_audit.integrations.flower._client import audit_mods, fmfl_audit_mod, make_client_mod
from fmfl_audit.integrations.flower._strategy import (
    AuditedStrategy,
    ClientInfo,
    FMInfo,
    ReplyRecord,
    RoundRecord,
)

__all__ = [
    "AuditedStrategy",
    "ClientInfo",
    "FMInfo",
    "ReplyRecord",
    "RoundRecord",
    "audit_mods",
    "fmfl_audit_mod",
    "make_client_mod",
]
