"""BagIt bags (RFC 8493) with the Library of Congress's `bagit` library, and their zip form.

`bagit.make_bag` changes the process's working directory while it runs, which a threaded worker must never
see (a relative SQLite path opened meanwhile would land elsewhere), so bags are made in a helper process.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import zipfile
from pathlib import Path

import bagit

from gateway.domain.archive import DIGEST

logging.getLogger("bagit").setLevel(logging.ERROR)  # its per-file warnings repeat what check_bag reports

TAGMANIFEST = f"tagmanifest-{DIGEST}.txt"
MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 4 * 1024**3  # a zip that would unpack past this is refused (a zip bomb is not a package)


class UnreadablePackage(Exception):
    """The file is no package we can open: a truncated or broken zip, a hostile member name, too big."""


def _make(folder: str, info: dict[str, str]) -> None:
    bagit.make_bag(folder, bag_info=info, checksums=[DIGEST])


_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
PARENT_CHECK_SECONDS = 1.0


def _exit_with(parent: int) -> None:
    """The helper's initializer. A pool's helper outlives a SIGKILLed worker, waiting for work forever (one
    stray process per kill, seen in the test suite), so it watches its parent and leaves when it is gone."""
    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def make_bag(folder: Path, files: dict[str, bytes], info: dict[str, str]) -> bytes:
    """Write `files` (paths inside the payload, without data/) into the empty `folder` and make it a bag
    (make_bag moves them under data/); the tag manifest's bytes."""
    global _pool
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                           initializer=_exit_with, initargs=(os.getpid(),))
            # Left to the interpreter's teardown, a pool prints "Exception ignored in ... weakref_cb".
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        pool = _pool
    try:
        pool.submit(_make, str(folder), info).result(timeout=600)
    except concurrent.futures.process.BrokenProcessPool:
        with _pool_lock:
            _pool = None  # the helper died (killed from outside): the next build starts a new one
        raise
    return (folder / TAGMANIFEST).read_bytes()


def add_tag_file(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def zip_bag(folder: Path, label: str = "") -> bytes:
    """The bag as one zip, members in name order with fixed times, so the same bag gives the same bytes; `label`
    (domain/archive.py package_label) is the zip's comment, so that a renamed file still says what it is."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.comment = label.encode()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            member = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(2000, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(member, path.read_bytes())
    return out.getvalue()


def unzip_to(data_or_path: Path, folder: Path) -> Path:
    """Unpack a package zip into `folder` safely; UnreadablePackage when it is not a whole, sane zip."""
    try:
        with zipfile.ZipFile(data_or_path) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise UnreadablePackage("the zip holds more than a package can")
            for m in members:
                name = m.filename
                if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
                    raise UnreadablePackage(f"the zip member {name!r} points outside the package")
            bad = zf.testzip()
            if bad is not None:
                raise UnreadablePackage(f"the zip member {bad} is damaged (its CRC does not match)")
            zf.extractall(folder)
    except UnreadablePackage:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UnreadablePackage(f"not a readable zip: {type(exc).__name__}: {exc}") from None
    return folder


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
    import zlib

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
