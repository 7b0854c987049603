"""A Flower app audited with fmfl-audit: five clients, one with 10x the data, one that drops out."""
