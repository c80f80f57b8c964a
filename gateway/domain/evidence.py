"""RFC 4998 (Evidence Record Syntax) hash trees, without I/O: one archive timestamp for many packages.

The data object of a package is its tag manifest (it covers bag-info.txt and the payload manifest, which covers
every file). A batch of packages gets one RFC 3161 timestamp over the root of a hash tree of their tag manifests;
each package keeps its own reduced hash tree, the few hash values that lead from its tag manifest to that root.

Building (RFC 4998 section 4.2): the leaves are the hash values of the data objects; "if there is more than one
hash value, place them in groups and sort each group in binary ascending order. Concatenate these values and
generate new hash values, which are inner nodes of this tree", level by level, until one hash value is left: the
root, which the timestamp stamps. A data object's reduced hash tree lists, level by level, the hash values under
the same father: the first list holds its own hash value with its siblings, each further list only the siblings,
the father being computed (the RFC's own example, Figure 2: pht1 = SEQ(h2abc, h1), pht2 = SEQ(h3)).

Verifying (section 4.3): "search for hash value h in the first list ... if not present, terminate verification
process with negative result"; hash the list (sorted, concatenated); "this hash value h' MUST become a member of the
next higher list", which is hashed the same way, until the root, which must be the timestamp's imprint, made with
the same hash algorithm. A timestamp over one data object needs no tree: it stamps the data object's hash itself
(the field is OPTIONAL; a first list of one value is carried forward unhashed, as RFC 6283 section 3.1.1 says for
the XML form of the same syntax).

Renewal (section 5.2): Timestamp Renewal stamps the hash of the previous archive timestamp's `timeStamp` field
(the whole DER element) and continues its chain; Hash-Tree Renewal, for a new hash algorithm, starts a new chain
over H(H(data object) + H(every earlier chain, as one DER ArchiveTimeStampSequence)).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def digest(algorithm: str, data: bytes) -> bytes:
    """H(data); ValueError for an algorithm hashlib does not know."""
    return hashlib.new(algorithm, data).digest()


def node(values: list[bytes], algorithm: str) -> bytes:
    """A father node: its children's hash values in binary ascending order, concatenated, hashed (4.2 step 4).
    Python compares bytes as unsigned octets from the first, the order the RFC means (the complete output of the
    hash function, most significant bit first)."""
    return digest(algorithm, b"".join(sorted(values)))


@dataclass(frozen=True)
class HashTree:
    """A hash tree over the leaves of one batch: its root, and each leaf's reduced hash tree (lists of values,
    the leaf's own level first), in the order the leaves were given. One leaf: the root is the leaf, with an empty
    reduced tree."""

    algorithm: str
    root: bytes
    reduced: list[list[list[bytes]]]

    @classmethod
    def build(cls, leaves: list[bytes], algorithm: str, arity: int = 2) -> HashTree:
        if not leaves:
            raise ValueError("a hash tree needs at least one leaf")
        if arity < 2:
            raise ValueError("a father node has at least two children")
        level = list(leaves)
        at = list(range(len(leaves)))  # each leaf's node on the current level
        reduced: list[list[list[bytes]]] = [[] for _ in leaves]
        while len(level) > 1:
            groups = [list(range(start, min(start + arity, len(level)))) for start in range(0, len(level), arity)]
            father_of = {member: n for n, group in enumerate(groups) for member in group}
            for leaf, position in enumerate(at):
                group = groups[father_of[position]]
                if len(group) == 1:
                    continue  # alone: carried up unchanged, no list for this level
                first = not reduced[leaf]
                reduced[leaf].append([level[m] for m in group if first or m != position])
            level = [level[g[0]] if len(g) == 1 else node([level[m] for m in g], algorithm) for g in groups]
            at = [father_of[position] for position in at]
        return cls(algorithm, level[0], reduced)


def root_from(leaf: bytes, reduced: list[list[bytes]], algorithm: str) -> bytes | None:
    """The root a reduced hash tree leads to from `leaf` (4.3 steps 2-3); None when `leaf` is not in its first
    list (the proof is another data object's). No tree: the leaf is the root."""
    if not reduced:
        return leaf
    first = reduced[0]
    if leaf not in first:
        return None
    current = first[0] if len(first) == 1 else node(first, algorithm)
    for siblings in reduced[1:]:
        current = node([*siblings, current], algorithm)
    return current


def timestamp_renewal_input(previous_timestamp: bytes, algorithm: str) -> bytes:
    """What a Timestamp Renewal stamps (5.2): the hash of the previous archive timestamp's whole `timeStamp`."""
    return digest(algorithm, previous_timestamp)


def hash_tree_renewal_inputs(data_object: bytes, earlier_chains: bytes, algorithm: str) -> tuple[bytes, bytes]:
    """What a Hash-Tree Renewal stamps for one data object (5.2 step 4), with the new algorithm: h' = H(h + ha), h
    the data object's hash and ha the hash of the earlier chains as one DER ArchiveTimeStampSequence. The first
    value is the formula of step 4, which is what this archive writes; the second the same pair sorted, as the
    RFC's Figure 4 draws it, which a verifier accepts too (both bind the same two hash values)."""
    h, ha = digest(algorithm, data_object), digest(algorithm, earlier_chains)
    return digest(algorithm, h + ha), node([h, ha], algorithm)
