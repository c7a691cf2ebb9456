"""A Merkle tree over the chain's events, so one event can be shown to belong to its head.

The tree is RFC 9162's (Certificate Transparency 2.0, §2.1): leaf ``i`` is
``SHA-256(0x00 || hash of event i+1)``, an inner node ``SHA-256(0x01 || left || right)``,
and a tree of ``n`` leaves splits at the largest power of two below ``n``. An
inclusion proof is the list of sibling hashes from a leaf up to the root, about
``log2(n)`` of them: 21 for two million events. A dossier carries the proofs of its
events and a signed checkpoint of the root, so it is checked with no database and
without showing any other definitie's events.

Every aligned run of ``BLOCK`` leaves is a node of that tree; the roots of such runs
are kept (``generation_log_merkle``) once computed, because the events they cover
never change (a changed event is ``verify``'s to find), so a root over millions of
events costs the few thousand newest leaves and a few hundred kept roots.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

BLOCK = 4096  # leaves under a kept root (a power of two)


def leaf(event_hash: str) -> bytes:
    """The leaf of an event (its stored hash, hex)."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash)).digest()


def node(left: bytes, right: bytes) -> bytes:
    """An inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` (at least one)."""
    level = list(leaves)
    if len(level) & (len(level) - 1) == 0:  # a power of two: level by level
        while len(level) > 1:
            level = [node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    k = _split(len(level))
    return node(root_of(level[:k]), root_of(level[k:]))


class Tree:
    """The tree over events ``1..size``; ``leaves(lo, hi)`` reads leaves ``lo..hi-1``.

    ``blocks`` holds the roots of the full aligned blocks known (block number -> root);
    :meth:`root` adds those it computes.
    """

    def __init__(
        self,
        size: int,
        leaves: Callable[[int, int], list[bytes]],
        blocks: dict[int, bytes] | None = None,
    ) -> None:
        """A tree of ``size`` leaves."""
        self.size = size
        self._leaves = leaves
        self.blocks = {} if blocks is None else blocks
        self.computed: dict[int, bytes] = {}  # the block roots computed here (to keep)
        self._read: dict[int, list[bytes]] = {}  # the leaves of the blocks read, by block

    def _leaves_in(self, lo: int, hi: int) -> list[bytes]:
        """Leaves ``lo..hi-1``, reading each block at most once (the proofs share them)."""
        block = lo // BLOCK
        if (hi - 1) // BLOCK != block:  # not inside one block: read as asked
            return self._leaves(lo, hi)
        if block not in self._read:
            first = block * BLOCK
            self._read[block] = self._leaves(first, min(self.size, first + BLOCK))
        return self._read[block][lo - block * BLOCK : hi - block * BLOCK]

    def _range(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == BLOCK and lo % BLOCK == 0:
            block = lo // BLOCK
            if block not in self.blocks:
                self.blocks[block] = self.computed[block] = root_of(self._leaves(lo, hi))
            return self.blocks[block]
        if n <= BLOCK:  # inside one block: its leaves
            return root_of(self._leaves_in(lo, hi))
        k = _split(n)
        return node(self._range(lo, lo + k), self._range(lo + k, hi))

    def root(self) -> bytes:
        """The root of the whole tree."""
        return self._range(0, self.size)

    def proof(self, index: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` (0-based), leaf to root."""
        path: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k))
                lo = lo + k
        return path[::-1]


def root_from_proof(index: int, size: int, leaf_hash: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root a proof leads to (RFC 9162, §2.1.3.2), or None when it cannot be one."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None
