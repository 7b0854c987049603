"""The deployment manifest: its model and its loader."""

from fmfl_audit.manifest.loader import Deployment, load_manifest, load_waivers
from fmfl_audit.manifest.model import Manifest

__all__ = ["Deployment", "Manifest", "load_manifest", "load_waivers"]
