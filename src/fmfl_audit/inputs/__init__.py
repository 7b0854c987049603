"""Readers for the data files and checkpoints a manifest names."""
