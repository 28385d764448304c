"""Faults a test can inject into the machine itself (the process faults live with the servers).

`tiny_filesystem` is a real, small filesystem (tmpfs, mounted as root) that a test can fill
until writes fail with ENOSPC, as a full data volume does, and then free again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CHUNK = b"\0" * 65536


@dataclass
class TinyFilesystem:
    path: Path

    @property
    def _filler(self) -> Path:
        return self.path / "filler"

    def fill(self) -> int:
        """Take every free byte (the next write anyone makes here fails with ENOSPC); bytes taken."""
        taken = 0
        with self._filler.open("ab", buffering=0) as filler:  # unbuffered: no write left for close()
            for chunk in (_CHUNK, b"\0" * 4096, b"\0"):  # big pieces first, then the last bytes
                while True:
                    try:
                        written = filler.write(chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    taken += written or 0
        return taken

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize


@contextlib.contextmanager
def tiny_filesystem(size_bytes: int) -> Iterator[TinyFilesystem]:
    """A tmpfs of `size_bytes` on a fresh directory, unmounted afterwards. Needs root (mount)."""
    if os.geteuid() != 0:
        raise PermissionError("a tiny filesystem needs root to mount a tmpfs (run the tests as root)")
    mountpoint = Path(tempfile.mkdtemp(prefix="tinyfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0777", "tmpfs", str(mountpoint)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield TinyFilesystem(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True, timeout=30)
        with contextlib.suppress(OSError):
            mountpoint.rmdir()
