"""JSON: the canonical, versioned report (`fmfl-audit schema report` publishes its schema)."""

from __future__ import annotations

import json
from typing import Any

from fmfl_audit.models import AuditReport
from fmfl_audit.report.interface import Renderer


class JsonRenderer(Renderer):
    """Pretty-printed JSON with stable key order."""

    def render(self, report: AuditReport) -> str:
        return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def report_schema() -> dict[str, Any]:
    """JSON Schema of the report."""
    schema = AuditReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fmfl-audit.dev/schema/report-1.0.json"
    return schema
