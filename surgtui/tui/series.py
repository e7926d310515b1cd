"""Curves with flat memory: a growing (x, y) series kept as at most `capacity` min/max buckets.

A long run logs hundreds of thousands of steps; the monitor only ever draws about
two points per column. Each bucket keeps the lowest and the highest point it saw
(with their x), so spikes survive any amount of downsampling.
"""

from __future__ import annotations

from collections.abc import Sequence

# One bucket: [count, x_of_min, min, x_of_max, max]
_N, _XMIN, _YMIN, _XMAX, _YMAX = range(5)


class MinMaxSeries:
    """Append-only (x, y) points, x increasing, in bounded memory."""

    __slots__ = ("capacity", "per_bucket", "count", "last", "_buckets")

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = max(2, capacity)
        self.per_bucket = 1
        self.count = 0
        self.last: float | None = None
        self._buckets: list[list[float]] = []

    def __len__(self) -> int:
        return self.count

    def extend(self, xs: Sequence[float], ys: Sequence[float | None]) -> None:
        """Append points; a None y (the stream's NaN/inf) is a gap, not a point."""
        if None in ys:
            pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
            xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        n = len(ys)
        if not n:
            return
        self.count += n
        self.last = ys[-1]
        buckets = self._buckets
        i = 0
        while buckets and buckets[-1][_N] < self.per_bucket and i < n:  # top up the open bucket
            b = buckets[-1]
            x, y = xs[i], ys[i]
            b[_N] += 1
            if y < b[_YMIN]:
                b[_XMIN], b[_YMIN] = x, y
            elif y > b[_YMAX]:
                b[_XMAX], b[_YMAX] = x, y
            i += 1
        # Widen the buckets first, so the new points never overflow the capacity.
        while len(buckets) + -(-(n - i) // self.per_bucket) > self.capacity:
            buckets = self._buckets = _merge(buckets, 2)
            self.per_bucket *= 2
        w = self.per_bucket
        for j in range(i, n, w):  # whole chunks: min/max/index run in C
            chunk = ys[j : j + w]
            lo, hi = min(chunk), max(chunk)
            buckets.append([len(chunk), xs[j + chunk.index(lo)], lo, xs[j + chunk.index(hi)], hi])

    def truncate(self, x_max: float) -> None:
        """Forget the points past `x_max` (a run resumed after a crash redoes them).

        A bucket holding points on both sides keeps its point at or before `x_max`.
        """
        buckets = self._buckets
        while buckets and min(buckets[-1][_XMIN], buckets[-1][_XMAX]) > x_max:
            self.count -= int(buckets.pop()[_N])
        if not buckets:
            self.last = None
            return
        b = buckets[-1]
        if max(b[_XMIN], b[_XMAX]) > x_max:
            x, y = (b[_XMIN], b[_YMIN]) if b[_XMIN] <= x_max else (b[_XMAX], b[_YMAX])
            b[_XMIN], b[_YMIN], b[_XMAX], b[_YMAX] = x, y, x, y
        self.last = b[_YMAX] if b[_XMAX] >= b[_XMIN] else b[_YMIN]

    def points(self, buckets: int) -> tuple[list[float], list[float]]:
        """At most `buckets` buckets' min and max, in x order: about 2 x `buckets` points."""
        group = max(1, -(-len(self._buckets) // max(1, buckets)))
        merged = _merge(self._buckets, group) if group > 1 else self._buckets
        xs: list[float] = []
        ys: list[float] = []
        for b in merged:
            first, second = sorted(((b[_XMIN], b[_YMIN]), (b[_XMAX], b[_YMAX])))
            xs.append(first[0])
            ys.append(first[1])
            if second != first:
                xs.append(second[0])
                ys.append(second[1])
        return xs, ys


def _merge(buckets: list[list[float]], group: int) -> list[list[float]]:
    out = []
    for i in range(0, len(buckets), group):
        chunk = buckets[i : i + group]
        lo = min(chunk, key=lambda b: b[_YMIN])
        hi = max(chunk, key=lambda b: b[_YMAX])
        out.append([sum(b[_N] for b in chunk), lo[_XMIN], lo[_YMIN], hi[_XMAX], hi[_YMAX]])
    return out
