"""Local paths stay under ``[muxly] files_root``; other locations are object storage reached by URL.

A location is either an object-storage URL (``s3://``, ``gs://``, ... : :data:`OBJECT_STORAGE_SCHEMES`) or a
local path. ``file://`` and ``local://`` URLs are local paths. A local path, relative (to ``files_root``) or
absolute, is accepted only when it resolves inside ``files_root`` with every symbolic link followed
(``os.path.realpath``), so ``..`` that stays inside is fine and a link that leads out is not. Chained fsspec
URLs (``zip::file://...``, ``simplecache::...``) and other schemes are refused: they can reach local files
around the check.

The check runs when a row is written and again when a run opens the path (every file a glob matches is checked
on its own), because links and ``files_root`` may change in between.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from muxly_provider.security.errors import MuxlyConfinementError

OBJECT_STORAGE_SCHEMES = frozenset(
    {
        "s3",
        "s3a",
        "gs",
        "gcs",
        "abfs",
        "abfss",
        "az",
        "adl",
        "wasb",
        "wasbs",
        "oci",
        "oss",
        "hdfs",
        "webhdfs",
        "sftp",
        "ftp",
        "memory",  # fsspec's in-process store: reaches no file of the host
    }
)
"""URL schemes accepted as object storage (opened through :class:`airflow.sdk.ObjectStoragePath`)."""

LOCAL_SCHEMES = frozenset({"file", "local"})
"""URL schemes that name local files (confined like plain paths)."""

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WILDCARD = re.compile(r"[*?\[]")


def files_root() -> Path:
    """``[muxly] files_root`` with its links resolved (it need not exist yet)."""
    from muxly_provider import settings

    return Path(os.path.realpath(settings.files_root()))


def is_remote(location: str) -> bool:
    """Whether ``location`` is an object-storage URL (``False`` for local paths and ``file://`` URLs).

    :raises MuxlyConfinementError: for chained URLs and schemes that are neither (field ``location``)
    """
    return _split(location, "location")[0] == "remote"


def _split(location: str, field: str) -> tuple[str, str]:
    """``("remote", url)`` or ``("local", path)``."""
    if "::" in location:
        raise MuxlyConfinementError(field, "a single URL or path (chained '::' URLs are not accepted)")
    match = _URL.match(location)
    if match is None:
        return "local", location
    scheme = match.group(1).lower()
    if scheme in LOCAL_SCHEMES:
        return "local", location[match.end() :]
    if scheme not in OBJECT_STORAGE_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in sorted(OBJECT_STORAGE_SCHEMES))
        raise MuxlyConfinementError(field, f"a local path or an object-storage URL ({schemes})")
    return "remote", location


def local_path(value: str, field: str, *, root: Path | None = None) -> Path:
    """``value`` resolved (links followed) against ``files_root``.

    :param value: a path, relative to ``files_root`` or absolute, or a ``file://`` URL
    :param field: the setting, for the error
    :param root: the root (default: :func:`files_root`)
    :raises MuxlyConfinementError: when it resolves outside the root
    """
    base = root if root is not None else files_root()
    kind, text = _split(value, field)
    if kind != "local":
        raise MuxlyConfinementError(field, "a local path")
    if "\x00" in text:
        raise MuxlyConfinementError(field, "a path without NUL characters")
    resolved = Path(os.path.realpath(base / text))
    return ensure_inside(resolved, field, root=base)


def ensure_inside(path: Path, field: str, *, root: Path | None = None) -> Path:
    """``path`` with its links resolved, when that is inside ``files_root``.

    :raises MuxlyConfinementError: otherwise (the message names ``files_root``, not the path's target)
    """
    base = root if root is not None else files_root()
    resolved = Path(os.path.realpath(path))
    if resolved != base and not resolved.is_relative_to(base):
        raise MuxlyConfinementError(
            field,
            f"a path inside [muxly] files_root ({base}); absolute paths, '..' and links leading out "
            "of it are refused",
        )
    return resolved


def split_glob(pattern: str, field: str, *, root: Path | None = None) -> tuple[Path, str]:
    """The resolved folder before the first wildcard of a local ``pattern``, and the rest of the pattern.

    :raises MuxlyConfinementError: when the folder is outside ``files_root`` or the rest has ``..``
    """
    kind, text = _split(pattern, field)
    if kind != "local":
        raise MuxlyConfinementError(field, "a local pattern")
    match = _WILDCARD.search(text)
    if match is None:
        return local_path(text, field, root=root).parent, Path(text).name
    cut = text.rfind("/", 0, match.start())
    base, relative = (text[: cut + 1] or "/", text[cut + 1 :]) if cut >= 0 else (".", text)
    if ".." in relative.split("/"):
        raise MuxlyConfinementError(field, "a pattern without '..' after its first wildcard")
    return local_path(base, field, root=root), relative


def check_location(value: str, field: str, *, root: Path | None = None, pattern: bool = False) -> str:
    """Check a ``path``, ``glob`` or ``output_dir`` setting; return ``"local"`` or ``"remote"``.

    :raises MuxlyConfinementError: for a local path outside ``files_root`` or an unknown URL scheme
    """
    kind, _ = _split(value, field)
    if kind == "local":
        if pattern:
            split_glob(value, field, root=root)
        else:
            local_path(value, field, root=root)
    return kind


def check_file_name(value: str, field: str) -> str:
    """``value`` when it is a plain file name part (no separators, not ``.`` or ``..``).

    :raises MuxlyConfinementError: otherwise
    """
    if not value or any(c in value for c in "/\\\x00") or value in {".", ".."}:
        raise MuxlyConfinementError(field, "a plain name without '/', '\\' or '..'")
    return value
