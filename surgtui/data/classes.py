"""Class names as other tools spell them, mapped to this project's labels (and `data.classes_map`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from surgtui.config.schema import CLASS_NAMES, DROP_CLASS, normal_name
from surgtui.errors import UserError


def class_index(name: str) -> int | None:
    """CLASS_NAMES index for a class as spelled in any supported file ('needle driver' too); None if unknown."""
    key = normal_name(name)
    return CLASS_NAMES.index(key) if key in CLASS_NAMES else None


@dataclass(frozen=True)
class ClassMap:
    """Reads a data set's class names: `data.classes_map` first, then our names spelled any way.

    `label(name)` is a CLASS_NAMES index, or None for a class the map drops.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)  # normal_name(theirs) → ours or DROP_CLASS

    @classmethod
    def of(cls, classes_map: Mapping[str, str] | None) -> ClassMap:
        return cls({normal_name(k): normal_name(v) for k, v in (classes_map or {}).items()})

    def label(self, name: str, where: str) -> int | None:
        """Our label for `name`; None when mapped to "drop"; UserError naming `where` when unknown."""
        mapped = self.mapping.get(normal_name(name))
        if mapped == DROP_CLASS:
            return None
        index = class_index(mapped or name)
        if index is None:
            raise UserError(
                f"{where}: class {name!r} is not one of {', '.join(CLASS_NAMES)} (any case, space or '_'); "
                f'map it or drop it with data.classes_map, e.g. {{ "{name}" = "needle_driver" }} '
                f'or {{ "{name}" = "{DROP_CLASS}" }}'
            )
        return index
