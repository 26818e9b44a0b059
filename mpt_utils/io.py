"""Atomic file writes: a crash or a dropped Colab session never leaves half a file behind.

Every writer saves to a temporary file in the destination folder and then renames it over the
target with :func:`os.replace`, which is atomic on POSIX and Windows file systems (Google Drive's
FUSE mount included, as far as a single rename goes).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    Parameters
    ----------
    path:
        Final destination. Its parent folder is created if needed.
    write:
        A function that writes the complete file to the temporary path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save one array as ``.npy`` atomically."""

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, array, allow_pickle=False)

    return atomic_write(path, write)


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save several arrays as an uncompressed ``.npz`` atomically."""

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict) -> Path:
    """Save a ``{name: torch.Tensor}`` dict as ``.safetensors`` atomically."""
    from safetensors.torch import save_file

    return atomic_write(path, lambda p: save_file(tensors, str(p)))


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes, read in chunks (a ViT-B checkpoint takes about a second)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


#: The time stamp written into generated spreadsheets, so that the same content gives the same bytes.
FIXED_TIMESTAMP = (2000, 1, 1, 0, 0, 0)


def atomic_write_xlsx(path: str | os.PathLike, header: list[str], rows: list[list[Any]]) -> Path:
    """Write a one-sheet ``.xlsx`` atomically and reproducibly: the same rows give the same bytes.

    A spreadsheet is a zip archive that stamps the time twice: in each member's header and in the workbook's
    "created"/"modified" properties. Both are set to :data:`FIXED_TIMESTAMP`.
    """
    import datetime
    import io
    import zipfile

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)  # openpyxl sets "modified" to now while saving: fixed below
    stamp = datetime.datetime(*FIXED_TIMESTAMP).strftime("%Y-%m-%dT%H:%M:%SZ")

    def write(p: Path) -> None:
        with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as dst:
            for member in src.infolist():
                data = src.read(member.filename)
                if member.filename == "docProps/core.xml":
                    text = data.decode("utf-8")
                    for tag in ("dcterms:created", "dcterms:modified"):
                        start = text.find(f"<{tag}")
                        if start >= 0:
                            open_end = text.index(">", start) + 1
                            close = text.index(f"</{tag}>", open_end)
                            text = text[:open_end] + stamp + text[close:]
                    data = text.encode("utf-8")
                info = zipfile.ZipInfo(member.filename, date_time=FIXED_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = member.external_attr
                dst.writestr(info, data)

    return atomic_write(path, write)
