"""BagIt bags (RFC 8493): their zip form, and reading and checking them with the Library of Congress's `bagit`
library. A new bag's files are written in memory (bag_writer.py).
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import bagit

from gateway.domain.archive import DIGEST

logging.getLogger("bagit").setLevel(logging.ERROR)  # its per-file warnings repeat what check_bag reports

TAGMANIFEST = f"tagmanifest-{DIGEST}.txt"
MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 4 * 1024**3  # a zip that would unpack past this is refused (a zip bomb is not a package)


class UnreadablePackage(Exception):
    """The file is no package we can open: a truncated or broken zip, a hostile member name, too big."""


def _member_order(name: str) -> tuple[str, ...]:
    return tuple(name.split("/"))  # as pathlib sorts paths: by their parts


def zip_bag(files: Mapping[str, bytes], label: str = "") -> bytes:
    """The bag (each file's path in it -> bytes) as one zip, members in path order with fixed times, so the same
    bag gives the same bytes; `label` (domain/archive.py package_label) is the zip's comment, so that a renamed
    file still says what it is."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.comment = label.encode()
        for name in sorted(files, key=_member_order):
            member = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(member, files[name])
    return out.getvalue()


class FolderFiles(Mapping[str, bytes]):
    """A bag folder's files by their path in it, read when asked for; a name that leads outside the folder is
    no file of it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._root = folder.resolve()

    def _file(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() and path.resolve().is_relative_to(self._root) else None

    def __getitem__(self, name: str) -> bytes:
        path = self._file(name)
        if path is None:
            raise KeyError(name)
        return path.read_bytes()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._file(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _checked_members(zf: zipfile.ZipFile, *, test: bool = True) -> list[zipfile.ZipInfo]:
    """The members, once the zip is sane; `test`: each member's CRC checked (testzip reads them all)."""
    members = zf.infolist()
    if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise UnreadablePackage("the zip holds more than a package can")
    for m in members:
        name = m.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
            raise UnreadablePackage(f"the zip member {name!r} points outside the package")
    bad = zf.testzip() if test else None
    if bad is not None:
        raise UnreadablePackage(f"the zip member {bad} is damaged (its CRC does not match)")
    return members


def _unreadable(exc: Exception) -> UnreadablePackage:
    return UnreadablePackage(f"not a readable zip: {type(exc).__name__}: {exc}")


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError,
               NotImplementedError)


def unzip_to(data_or_path: Path, folder: Path) -> Path:
    """Unpack a package zip into `folder` safely; UnreadablePackage when it is not a whole, sane zip."""
    try:
        with zipfile.ZipFile(data_or_path) as zf:
            _checked_members(zf)
            zf.extractall(folder)
    except UnreadablePackage:
        raise
    except _ZIP_ERRORS as exc:
        raise _unreadable(exc) from None
    return folder


def unzip(path: Path) -> dict[str, bytes]:
    """A package zip's files by their path in it (folders left out), with unzip_to's checks. Reading a member checks
    its CRC (BadZipFile): no testzip first, which would read every member twice."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {m.filename: zf.read(m) for m in _checked_members(zf, test=False) if not m.is_dir()}
    except UnreadablePackage:
        raise
    except _ZIP_ERRORS as exc:
        raise _unreadable(exc) from None


def zip_label(path: Path) -> str | None:
    """The label a package zip carries as its comment (zip_bag), or None: none, not a zip, not text."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.comment.decode() or None
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError):
        return None


def open_bag(folder: Path) -> bagit.Bag:
    try:
        return bagit.Bag(os.fspath(folder))
    except (bagit.BagError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadablePackage(f"not a BagIt bag: {exc}") from None


def check_bag(bag: bagit.Bag) -> list[tuple[str, str]]:
    """(path, problem) for each file that fails the manifests; [] when the bag is valid. The Payload-Oxum
    (file count and bytes) is left out: it fails first and would hide which file is wrong; the manifest
    comparison names every missing, added and changed file instead."""
    bag.info.pop("Payload-Oxum", None)
    try:
        bag.validate()
        return []
    except bagit.BagValidationError as exc:
        details = [(str(d.path), _problem(d)) for d in exc.details or []]
        return details or [("bag", str(exc.message))]
    except (bagit.BagError, OSError, UnicodeDecodeError, ValueError) as exc:
        return [("bag", f"{type(exc).__name__}: {exc}")]


def _problem(detail: bagit.ManifestErrorDetail) -> str:
    if isinstance(detail, bagit.ChecksumMismatch):
        return f"changed: its {detail.algorithm} is {detail.found}, the manifest says {detail.expected}"
    if isinstance(detail, bagit.FileMissing):
        return "missing: named in the manifest but not in the package"
    if isinstance(detail, bagit.UnexpectedFile):
        return "unexpected: in the package but in no manifest (added or renamed)"
    return str(detail)


def _manifest(text: str) -> dict[str, str]:
    """A BagIt manifest as {path: checksum}; paths decoded as RFC 8493 2.1.3 encodes them."""
    entries = {}
    for line in text.splitlines():
        checksum, _, name = line.strip().partition(" ")
        if name:
            entries[name.strip().replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")] = checksum.lower()
    return entries


def read_checked(path: Path, member: str) -> bytes:
    """One file of a package zip, read without unpacking the rest, checked against the payload manifest and the
    manifest against the tag manifest (which the archive timestamp covers). FileNotFoundError when there is no
    package file; UnreadablePackage, saying what is wrong, when the file does not match."""
    import hashlib

    manifest_name = f"manifest-{DIGEST}.txt"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = next((n for n in (TAGMANIFEST, manifest_name, member) if n not in names), None)
            if missing is not None:
                raise UnreadablePackage(f"the package has no {missing}")
            tags = _manifest(zf.read(TAGMANIFEST).decode("utf-8"))
            manifest = zf.read(manifest_name)
            data = zf.read(member)
    except (FileNotFoundError, UnreadablePackage):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError,
            NotImplementedError, UnicodeDecodeError) as exc:
        raise UnreadablePackage(f"not a readable zip: {type(exc).__name__}: {exc}") from None
    if tags.get(manifest_name) != hashlib.new(DIGEST, manifest).hexdigest():
        raise UnreadablePackage(f"{manifest_name} does not match the tag manifest: the package was changed")
    try:
        expected = _manifest(manifest.decode("utf-8")).get(member)
    except UnicodeDecodeError:
        raise UnreadablePackage(f"{manifest_name} is not text") from None
    if expected is None:
        raise UnreadablePackage(f"{member} is in no manifest of the package")
    if hashlib.new(DIGEST, data).hexdigest() != expected:
        raise UnreadablePackage(f"{member} does not match the manifest: the file was changed")
    return data
