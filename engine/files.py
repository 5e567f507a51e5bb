"""Writing results and checkpoints so that a crash, a kill or a full disk never leaves a
half-written file in place of a good one.

`write_atomic` and `atomic_path` write to a temporary file in the target's own directory
(a rename never crosses file systems), flush it to the disk (fsync), then `os.replace` it
over the target: readers see the old file or the new one, never a mix. When the write
fails (disk full, read-only file system, no permission, a directory in the way), the
temporary file is removed, the old target is untouched, and `WriteError` names the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.progress import point

REASONS = {  # errno -> what to tell the user
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a parent is not a directory",
}


class WriteError(OSError):
    """A result or checkpoint could not be written; the message names the path and why."""


def describe(error: OSError) -> str:
    """A short reason for an OSError ("no space left on the device")."""
    return REASONS.get(error.errno, error.strerror or str(error))


def write_error(path: Path | str, error: OSError) -> WriteError:
    """WriteError naming `path` and why `error` happened; nothing saved there was changed."""
    return WriteError(error.errno, f"cannot write {path}: {describe(error)} (nothing saved there was changed)")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory; the rename still happened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path next to `path`; when the block ends without an error, the file written
    there is fsynced and renamed over `path`. `suffix` ends the temporary name (some writers, such as
    np.savez, add ".npz" unless the name already ends in it). Raises WriteError naming `path` on an
    OSError; the temporary file is removed on any error."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise write_error(path, e) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if path.exists():  # keep the target's permissions, not mkstemp's 0600
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        point("write:ready", path=str(path))  # on the disk, not yet in place
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, WriteError):
            raise
        raise write_error(path, e) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write `data` (text as UTF-8, or bytes) to `path` atomically; WriteError names the path on failure."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)


def save_figure(fig, path: Path | str, **savefig_kwargs) -> None:
    """A matplotlib figure's `savefig` to `path` atomically (format from the suffix); WriteError names the path."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)


__all__ = ["WriteError", "atomic_path", "describe", "save_figure", "write_atomic", "write_error"]
