"""Robustness checkers (FMFL-R..); the area's checker list is `catalog.CHECKERS`."""
