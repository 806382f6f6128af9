"""The repository the suite lives in, and a copy of it that a test may change freely."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Without git (an exported tree): what a clean clone would not hold either.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".schemathesis", "schemathesis-report", ".env",
)  # fmt: skip


def copy_project(dest: Path) -> Path:
    """Copy what a clean clone holds to `dest`: in a git work tree, the tracked and new files
    that are not ignored; otherwise the tree without virtual environments, caches, version
    control or `.env`. The repository itself is never changed."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=_NOT_COPIED, dirs_exist_ok=True)
        return dest
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the work tree is skipped
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest
