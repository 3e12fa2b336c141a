"""Atomic file writes and file hashing, for every module that writes results.

Every file is written via a temp file in the same folder + fsync + rename, so readers (and a
crash) see the old file or the new one, never half of one; a write the file system refuses
raises RunError naming the file (``write_failed``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from ganscope.errors import RunError


def file_mode() -> int:
    """The mode a plain open() would give (0o666 minus the umask); mkstemp's is 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_failed(path: str | os.PathLike, e: OSError) -> RunError:
    """The one line for a write the file system refused (full disk, read-only folder, ...)."""
    why = e.strerror or type(e).__name__
    hint = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
            errno.EFBIG: "the file is larger than this system allows",
            errno.EROFS: "the file system is read-only: use a writable --runs-dir",
            errno.EACCES: "make the folder writable", errno.EPERM: "make the folder writable",
            }.get(e.errno or 0, "check the folder")
    return RunError(f"cannot write {path} ({why}): {hint}; files written before are kept, "
                    "so a training run can continue with `ganscope train --resume`")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers (and a crash) see the
    old file or the new one, never half of one. A refused write raises RunError naming the file
    and leaves the previous version in place."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as e:
        unlink_quietly(tmp)
        raise write_failed(path, e) from None
    except BaseException:
        unlink_quietly(tmp)
        raise


def unlink_quietly(path: str | None) -> None:
    if path is not None:
        with suppress(OSError):
            os.unlink(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    atomic_write_bytes(path, buf.getvalue())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (checkpoints, weights, latent files)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
