"""Checkers: one module per rule family, grouped by area."""
