"""Guard for rebuild commands: committed results are written only where the user says so.

A table rebuilt from run files must not land on top of the committed one (and drop its hand-written
sections) or add files to a committed run folder by default. :func:`holds_committed_files` asks git
whether a path is, or contains, a tracked file; :func:`refuse_default_destination` turns that into a
one-line error that names the flag to pass. Outside a git checkout nothing is committed, so nothing
is refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mege.errors import MegeError


def holds_committed_files(path: str | Path) -> bool:
    """True when ``path`` is a file tracked by git or a folder holding tracked files."""
    path = Path(path).resolve()
    where = path if path.is_dir() else path.parent
    if not where.is_dir():
        return False
    try:
        out = subprocess.run(["git", "ls-files", "--", str(path)], cwd=where, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def refuse_default_destination(path: str | Path, flag: str, what: str = "the tables") -> None:
    """Raise when a command's *default* destination holds committed files (an explicit ``flag DIR`` is the user's call)."""
    if holds_committed_files(path):
        raise MegeError(f"{path} holds committed results; pass {flag} DIR to write {what} elsewhere "
                        f"(or {flag} {path} to overwrite them on purpose).")
