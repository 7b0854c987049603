"""The renderer contract: one class per output format, each turning an `AuditReport` into text."""

from __future__ import annotations

from abc import ABC, abstractmethod

from fmfl_audit.models import AuditReport


class Renderer(ABC):
    """Turns a report into the text of one format."""

    @abstractmethod
    def render(self, report: AuditReport) -> str:
        """The whole document."""
