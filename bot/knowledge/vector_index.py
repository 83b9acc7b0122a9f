"""Vectors in memory for the SQLite store: quantisation, and a Hamming scan over sign bits
with a cosine re-rank of the best candidates on their int8 components.

The sign bits of a 1,024-dimension vector are 128 bytes (13 MB for 100,000 chunks per
process); a scan XORs them with the question's bits in blocks and counts the differing
bits. float32 in memory would be 400 MB per process, over a 512 MB instance's budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

SCAN_ROWS = 16_384  # rows XORed at once: bounds each search's scratch memory to ~2 MB


def quantise(vectors: Sequence[Sequence[float]], dimensions: int) -> list[tuple[bytes, bytes]]:
    """(sign bits padded to 64-bit words, int8 components) of each vector."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dimensions or not np.isfinite(matrix).all():
        raise ValueError(f"expected finite vectors of {dimensions} numbers")
    bits = np.packbits(matrix > 0, axis=1)
    bits = np.pad(bits, ((0, 0), (0, -bits.shape[1] % 8)))
    peak = np.abs(matrix).max(axis=1, keepdims=True)
    q = np.rint(matrix / np.where(peak > 0, peak, 1.0) * 127).astype(np.int8)
    return [(b.tobytes(), c.tobytes()) for b, c in zip(bits, q, strict=True)]


def by_cosine(vector: np.ndarray, rows: Sequence[tuple[int, bytes]]) -> list[tuple[int, float]]:
    """(pk, cosine with the unit `vector`) of (pk, int8 components) rows, best first."""
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(q for _, q in rows), dtype=np.int8)
    matrix = matrix.reshape(len(rows), -1).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1)
    scores = (matrix @ vector) / np.where(norms > 0, norms, 1.0)
    return [(rows[i][0], float(scores[i])) for i in np.argsort(-scores, kind="stable")]


def rescore(vector: np.ndarray, rows: Sequence[tuple[int, bytes]]) -> list[int]:
    """The pks of (pk, int8 components) rows by cosine with `vector`, best first."""
    return [pk for pk, _ in by_cosine(vector, rows)]


def centroid(components: Sequence[bytes]) -> np.ndarray | None:
    """The normalised sum of these int8 vectors, each made a unit vector first (a
    document's vector from its chunks'); None for none."""
    if not components:
        return None
    matrix = np.frombuffer(b"".join(components), dtype=np.int8)
    matrix = matrix.reshape(len(components), -1).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    total = (matrix / np.where(norms > 0, norms, 1.0)).sum(axis=0)
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else None


class BinaryIndex:
    """The sign bits of every vector of one model, in memory, scanned by Hamming distance."""

    def __init__(self, pks: np.ndarray, codes: np.ndarray) -> None:
        self.pks, self.codes = pks, codes

    @classmethod
    def load(cls, batches: Iterable[list[tuple[int, bytes]]], total: int) -> BinaryIndex:
        """From (pk, bits) batches of about `total` rows, filled in place (no second copy)."""
        pks = np.empty(total, dtype=np.int64)
        codes: np.ndarray | None = None
        filled = 0
        for batch in batches:
            batch = batch[: total - filled]  # rows written since the count: next reload
            if not batch:
                break
            words = np.frombuffer(b"".join(b for _, b in batch), dtype=np.uint64)
            words = words.reshape(len(batch), -1)
            if codes is None:
                codes = np.empty((total, words.shape[1]), dtype=np.uint64)
            codes[filled : filled + len(batch)] = words
            pks[filled : filled + len(batch)] = [pk for pk, _ in batch]
            filled += len(batch)
        if codes is None:
            codes = np.empty((0, 1), dtype=np.uint64)
        return cls(pks[:filled], codes[:filled])

    def __len__(self) -> int:
        return len(self.pks)

    @property
    def nbytes(self) -> int:
        return self.pks.nbytes + self.codes.nbytes

    def nearest(self, bits: bytes, n: int, only: np.ndarray | None = None) -> list[int]:
        """The pks of (about) the `n` rows nearest to these sign bits, in no order; with
        `only` (a mask over the rows), of those rows alone, chosen exactly as an index
        holding only them would choose."""
        if only is not None:
            rows = np.flatnonzero(only)
            if n >= len(rows):
                return self.pks[rows].tolist()
            distances = self._distances(bits)[rows]
            return self.pks[rows[np.argpartition(distances, n)[:n]]].tolist()
        if n >= len(self.pks):
            return self.pks.tolist()
        distances = self._distances(bits)
        return self.pks[np.argpartition(distances, n)[:n]].tolist()

    def _distances(self, bits: bytes) -> np.ndarray:
        """The Hamming distance of every row to these sign bits."""
        query = np.frombuffer(bits, dtype=np.uint64)
        distances = np.empty(len(self.pks), dtype=np.uint16)
        for start in range(0, len(self.pks), SCAN_ROWS):
            block = self.codes[start : start + SCAN_ROWS] ^ query
            np.bitwise_count(block).sum(
                axis=1, dtype=np.uint16, out=distances[start:][: len(block)]
            )
        return distances
