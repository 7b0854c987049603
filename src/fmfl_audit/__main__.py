"""`python -m fmfl_audit`."""

from fmfl_audit.cli.main import run

run()
