"""Atomic file writes: a crash never leaves a half-written output file.

Every file goes to a temporary name beside its target and is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files that a killed writer left in ``folder`` (and its subfolders).

    ``atomic_write`` names them ``.<target>.<random>.tmp``; a process killed between
    creating and renaming one leaves it behind, and the rerun would not overwrite it.
    """
    for tmp in Path(folder).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame atomically as Parquet (deterministic bytes for equal data)."""
    atomic_write(path, lambda p: df.to_parquet(p, index=False, engine="pyarrow"))


def write_text(text: str, path: Path) -> None:
    """Write text atomically."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def replace_marked(path: Path, start: str, end: str, body: str) -> bool:
    """Replace the text between the marker lines ``start`` and ``end`` of a file with ``body``.

    Returns:
        Whether the file changed.

    Raises:
        ValueError: If the file lacks either marker.
    """
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{path}: no {start} ... {end} section")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}{end}{tail}"
    if new != text:
        write_text(new, path)
    return new != text
