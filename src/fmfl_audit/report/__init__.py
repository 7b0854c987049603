"""Report rendering: one renderer per format, all reading the same `AuditReport`."""
