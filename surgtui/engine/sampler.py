"""The order training samples are seen in: a permutation of (seed, epoch), split between DDP ranks."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """A fresh permutation per epoch from (seed, epoch), optionally starting part-way in.

    The order depends on nothing but the seed and the epoch, so a resumed run sees
    the same batches; `skip` resumes an epoch that was stopped in the middle.
    With `mosaic_epochs` set it yields `(index, mosaic allowed)`: the sampler runs in the
    main process, so the switch reaches persistent loader workers without restarting them.
    """

    def __init__(
        self, n: int, seed: int, rank: int = 0, world_size: int = 1, mosaic_epochs: int | None = None
    ) -> None:
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.mosaic_epochs = mosaic_epochs
        self.epoch, self.skip = 1, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """`skip`: samples (of this rank's share) already trained on in this epoch."""
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        # DDP: each rank an equal share (a few samples dropped), or ranks would step a different number of times.
        return order[: self._usable()][self.rank :: self.world_size]

    def _usable(self) -> int:
        return self.n - self.n % self.world_size

    def __iter__(self) -> Iterator[int | tuple[int, bool]]:
        indices = self._indices()[self.skip :]
        if self.mosaic_epochs is None:
            return iter(indices)
        mosaic = self.epoch <= self.mosaic_epochs
        return iter([(i, mosaic) for i in indices])

    def __len__(self) -> int:
        return max(0, self._usable() // self.world_size - self.skip)
