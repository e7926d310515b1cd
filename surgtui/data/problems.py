"""A tally of problems by kind, keeping a few example messages of each for the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

EXAMPLES_PER_KIND = 5


@dataclass
class Problems:
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, message: str, count: int = 1) -> None:
        """Count `count` occurrences of `kind`; keep `message` if fewer than EXAMPLES_PER_KIND are kept."""
        self.counts[kind] += count
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES_PER_KIND:
            kept.append(message)

    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self, meanings: Mapping[str, str] | None = None) -> list[str]:
        """`kind: N (what it means)` then up to EXAMPLES_PER_KIND indented examples, kinds sorted by name."""
        out = []
        for kind in sorted(self.counts):
            meaning = (meanings or {}).get(kind)
            out.append(f"{kind}: {self.counts[kind]}" + (f" ({meaning})" if meaning else ""))
            out += [f"  {m}" for m in self.examples.get(kind, [])]
        return out

    def to_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "examples": dict(sorted(self.examples.items()))}
