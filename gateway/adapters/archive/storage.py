"""Where packages live: one folder per dossier code, each package file written once and never overwritten.

A file is written under a temporary name, fsynced, then linked to its final name (link fails if the name
exists, so nothing is ever replaced) and the folder fsynced: a worker killed at any point leaves either
no package or a whole one, never a half file under a package's name. Temporary leftovers are swept.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from gateway.domain.archive import package_name, safe_name

_VERSION = re.compile(r"\.v(\d{4})\.zip$")


class AlreadyStored(Exception):
    """A package of that name exists: the store never overwrites."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, code: str) -> Path:
        return self.root / safe_name(code)

    def sweep(self, code: str) -> None:
        """Forget what a killed build of this dossier left behind: its temporary files."""
        folder = self.folder(code)
        if folder.is_dir():
            for tmp in folder.glob(".tmp-*"):
                tmp.unlink(missing_ok=True)

    def write_once(self, code: str, version: int, data: bytes) -> Path:
        folder = self.folder(code)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / package_name(code, version)
        tmp = folder / f".tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, final)  # never replaces: FileExistsError if the name is taken
        except FileExistsError:
            raise AlreadyStored(str(final)) from None
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
        return final

    def versions(self, code: str) -> list[tuple[int, Path]]:
        folder = self.folder(code)
        found = [(int(m.group(1)), p) for p in folder.glob("*.zip") if (m := _VERSION.search(p.name))] \
            if folder.is_dir() else []
        return sorted(found)

    def latest(self, code: str) -> tuple[int, Path] | None:
        versions = self.versions(code)
        return versions[-1] if versions else None

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path:
        return self.root / relative
