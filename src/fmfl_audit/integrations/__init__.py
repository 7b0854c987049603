"""Capture at the edge: code that runs inside or after a federation and writes our inputs.

Each module here *writes* files in the shapes the checkers read (a participation log, safetensors
updates, prompt and output JSONL) plus a starter `manifest.yaml`; the engine and the checkers never
import this package (DESIGN.md, "Beyond the scan"). Framework-specific modules (`flower`) import
their framework and need its extra; the rest (`scaffold`, `fm_log`, `detect`, the importers) need
nothing beyond fmfl-audit itself.
"""
