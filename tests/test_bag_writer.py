"""The bag written in memory is the bag bagit makes: bagit.make_bag, run on a folder holding the same payload with
the same bag-info, writes the same files with the same bytes (the tag manifest's lines in another order, which
the file system chooses), and bagit validates the zip the gateway stores."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import tempfile
from pathlib import Path

import bagit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.adapters.archive.bag import TAGMANIFEST, UnreadablePackage, unzip, unzip_to, zip_bag
from gateway.adapters.archive.bag_writer import AGENT, bag_files


@pytest.fixture(scope="module")
def bagit_makes():
    """What bagit.make_bag writes for a payload: each file of the folder by its path in it. make_bag changes the
    working directory while it runs: in a process of its own, so that no thread of this test process (a server of
    another test's fixture) opens a relative path meanwhile."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        def make(payload: dict[str, bytes], info: dict[str, str]) -> dict[str, bytes]:
            with tempfile.TemporaryDirectory() as folder:
                root = Path(folder)
                for name, data in payload.items():
                    (root / name).parent.mkdir(parents=True, exist_ok=True)
                    (root / name).write_bytes(data)
                pool.submit(bagit.make_bag, folder, dict(info), 1, ["sha256"]).result(timeout=60)
                return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

        yield make


SEGMENT = st.text("abcxyzĐđệữ0189 _-.%()", min_size=1, max_size=8).filter(lambda s: s not in {".", ".."})
# bagit reads a manifest line stripped, so a path ending in a space cannot be told from the path without it (make_bag
# then refuses its own bag: "lists data/0 multiple times"); the gateway's payload paths never end so (safe_name).
PATHS = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join).filter(lambda path: not path.endswith(" "))
BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # line breaks to bagit's reader besides CR and LF
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters=BREAKS), max_size=40)


def _no_file_is_a_folder(payload: dict[str, bytes]) -> bool:
    return not any(other.startswith(f"{name}/") for name in payload for other in payload)


PAYLOADS = st.dictionaries(PATHS, st.binary(max_size=300), min_size=0, max_size=8).filter(_no_file_is_a_folder)
INFOS = st.fixed_dictionaries({"Bagging-Date": st.dates().map(str), "External-Identifier": VALUES},
                              optional={"Source-Organization": VALUES, "External-Description": VALUES,
                                        "Ma-Ho-So": VALUES, "Thoi-Han-Bao-Quan": VALUES})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS, info=INFOS)
def test_the_bag_written_in_memory_is_the_bag_bagit_makes(bagit_makes, payload, info) -> None:  # noqa: ANN001
    ours = bag_files(payload, info)
    theirs = bagit_makes(payload, {**info, "Bag-Software-Agent": AGENT})
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        if name == TAGMANIFEST:
            assert sorted(ours[name].splitlines()) == sorted(theirs[name].splitlines())
        else:
            assert ours[name] == theirs[name], name


def test_bagit_validates_the_stored_zip_and_reads_what_made_it(tmp_path) -> None:  # noqa: ANN001
    payload = {"dossier.json": b'{"code": "H56.99-261207-0001"}\n', "attachments/01-Giấy khai sinh.pdf": b"%PDF-1.7\n",
               "results/ref-01-Quyết định.pdf": b"%PDF-1.7 result\n", "history.json": b"[]\n"}
    info = {"External-Identifier": "H56.99-261207-0001", "Bagging-Date": "2026-12-07",
            "External-Description": "Đăng ký khai sinh\r\n(dòng hai)"}
    stored = tmp_path / "p.zip"
    stored.write_bytes(zip_bag(bag_files(payload, info)))
    folder = unzip_to(stored, tmp_path / "bag")
    bag = bagit.Bag(str(folder))
    bag.validate()  # every manifest, the tag manifest and the Payload-Oxum
    assert bag.info["Bag-Software-Agent"] == AGENT
    assert bag.info["Payload-Oxum"] == f"{sum(map(len, payload.values()))}.{len(payload)}"
    assert bag.info["External-Description"] == "Đăng ký khai sinh(dòng hai)"  # a tag line cannot break
    assert {f"data/{name}" for name in payload} == set(bag.payload_files())


@pytest.mark.parametrize("brk", list(BREAKS + "\r\n"))
def test_a_line_break_in_a_value_never_makes_a_bag_bagit_cannot_open(tmp_path, brk) -> None:  # noqa: ANN001
    """bagit writes a title holding U+2028 as it is, and then cannot open its own bag ("invalid tag"): a sealed
    package would never verify. The writer drops every line break bagit's reader knows."""
    folder = tmp_path / "bag"
    for name, data in bag_files({"a.txt": b"a"}, {"External-Description": f"Hồ sơ{brk}đất đai",
                                                  "Bagging-Date": "2026-12-07"}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    bag = bagit.Bag(str(folder))
    bag.validate()
    assert bag.info["External-Description"] == "Hồ sơđất đai"


def test_a_package_read_whole_in_memory_is_refused_when_a_member_is_damaged(tmp_path) -> None:  # noqa: ANN001
    """unzip (the renewal's read) checks each member's CRC as it reads it: a flipped byte is refused, never renewed."""
    files = bag_files({"dossier.json": b'{"note": "' + b"ho so " * 200 + b'"}\n'}, {"Bagging-Date": "2026-12-07"})
    stored = tmp_path / "p.zip"
    stored.write_bytes(zip_bag(files))
    assert unzip(stored) == files
    damaged = bytearray(stored.read_bytes())
    at = damaged.find(b"data/dossier.json") + len(b"data/dossier.json") + 5  # inside the member's deflated data
    damaged[at] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    with pytest.raises(UnreadablePackage):
        unzip(stored)
