"""A BagIt bag (RFC 8493) written in memory: the files `bagit.make_bag` writes, as bytes, with no folder.

`bagit.make_bag` works on a folder, and changes the process's working directory while it runs, so the gateway
ran it in a helper process: each package's files were written to a scratch folder, moved under data/, read back
to be hashed, read again by `bagit.Bag`, once more to be zipped, then removed. That came to about 5 ms per package
(docs/performance.md, issue 24, seventh round). Here the same tag files are made from the bytes in hand:

- bagit.txt: the declaration bagit 1.9 writes (BagIt-Version 0.97, UTF-8);
- manifest-<alg>.txt: "<digest>  data/<path>" (two spaces), in bagit's walk order (each folder's files by name,
  then its sub-folders by name), CR and LF in names encoded as bagit does; none for an empty payload;
- bag-info.txt: "Key: value" by sorted key, line breaks dropped from values, Payload-Oxum "<bytes>.<files>" added
  (Bagging-Date is the caller's: bagit would add today's);
- tagmanifest-<alg>.txt: "<digest> <name>" (one space) over the other tag files, sorted by name (bagit lists them
  in the folder's order, which the file system chooses; the order carries no meaning, RFC 8493 2.2.1).

`tests/test_bag_writer.py` holds this to bagit, which makes the same bag in a folder, file for file and byte for
byte (the tag manifest line for line); bagit stays the reader and validator of every package (verify.py).
"""

from __future__ import annotations

import hashlib
import re

BAGIT_TXT = b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n"  # bagit 1.9 make_bag
# RFC 8493 2.2.2: the software that made the bag. This code, not bagit.py, writes these bytes.
AGENT = "vn-public-services-gateway (gateway/adapters/archive/bag_writer.py, the bag bagit.py 1.9 makes)"
# bagit's _make_tag_file drops CR and LF from values. Its reader (codecs' readline) also breaks lines at the other
# line boundaries of str.splitlines: a value holding U+2028, say, made a bag bagit cannot open. Dropped as well.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _walk_key(path: str) -> tuple[tuple[int, str], ...]:
    """os.walk with sorted names, as bagit walks data/: a folder's files before its sub-folders."""
    *folders, name = path.split("/")
    return (*((1, f) for f in folders), (0, name))


def _encode(name: str) -> str:
    return name.replace("\r", "%0D").replace("\n", "%0A")  # bagit's _encode_filename


def bag_files(payload: dict[str, bytes], info: dict[str, str], algorithm: str = "sha256",
              agent: str = AGENT) -> dict[str, bytes]:
    """The bag's files by their path in it: the payload (paths without data/) under data/, and the tag files."""
    files = {f"data/{name}": data for name, data in payload.items()}
    order = sorted(files, key=_walk_key)
    tags = {"bagit.txt": BAGIT_TXT}
    if files:
        tags[f"manifest-{algorithm}.txt"] = "".join(
            f"{hashlib.new(algorithm, files[name]).hexdigest()}  {_encode(name)}\n" for name in order).encode()
    info = {"Bag-Software-Agent": agent, **info,
            "Payload-Oxum": f"{sum(len(d) for d in files.values())}.{len(files)}"}
    tags["bag-info.txt"] = "".join(f"{key}: {_LINE_BREAKS.sub('', str(info[key]))}\n"
                                   for key in sorted(info)).encode()
    tags[f"tagmanifest-{algorithm}.txt"] = "".join(
        f"{hashlib.new(algorithm, tags[name]).hexdigest()} {name}\n" for name in sorted(tags)).encode()
    return {**tags, **files}
