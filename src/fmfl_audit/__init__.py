"""fmfl-audit: audit foundation-model + federated-learning deployments.

The library API: `load_manifest()`, `Auditor(...).run()` and the report model. Heavy names are
loaded on first access so importing the package stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmfl_audit._version import __version__

if TYPE_CHECKING:
    from fmfl_audit.engine.runner import Auditor
    from fmfl_audit.manifest import Deployment, load_manifest
    from fmfl_audit.models import AuditReport

__all__ = ["AuditReport", "Auditor", "Deployment", "__version__", "load_manifest"]

_LAZY = {
    "Auditor": "fmfl_audit.engine.runner",
    "load_manifest": "fmfl_audit.manifest",
    "Deployment": "fmfl_audit.manifest",
    "AuditReport": "fmfl_audit.models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmfl_audit' has no attribute {name!r}")
