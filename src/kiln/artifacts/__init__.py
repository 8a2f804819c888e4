"""Content-addressed artifact storage over fsspec; every read is checked against its sha256."""

from kiln.artifacts._cas import ArtifactStore, sha256_file

__all__ = ["ArtifactStore", "sha256_file"]
