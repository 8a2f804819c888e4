"""Content-addressed artifact storage over fsspec; every read is checked against its sha256."""

from kiln.artifacts._cas import ArtifactStore, sha256_file
from kiln.artifacts._folder import hash_folder
from kiln.artifacts._paths import check_relative_path, inside

__all__ = ["ArtifactStore", "check_relative_path", "hash_folder", "inside", "sha256_file"]
