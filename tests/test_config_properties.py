"""No TOML a user can write makes loading crash: it validates or fails with a ConfigError."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surgtui.config.load import load_experiment
from surgtui.errors import ConfigError

KEYS = ["lr", "epochs", "img_size", "focal", "backbone", "variant", "coord", "class", "device", "source", "x"]
SECTIONS = ["", "optim", "train", "model", "loss", "data", "data.synthetic", "schedule", "nope"]
values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(string.printable, max_size=12),
    st.lists(st.integers(-5, 5), max_size=4),
)


def toml_value(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
        )
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(KEYS), values), max_size=6),
    junk=st.text(max_size=20),
)
def test_generated_toml_never_crashes(tmp_path: Path, entries: list, junk: str) -> None:
    lines: list[str] = []
    for section, key, value in entries:
        lines.append(f"[{section}]" if section else "")
        lines.append(f"{key} = {toml_value(value)}")
    p = tmp_path / "gen.toml"
    p.write_text("\n".join(lines) + ("\n" + junk if junk.strip().startswith("#") else ""))
    try:
        load_experiment(p, env={})
    except ConfigError as exc:
        assert str(exc).startswith(str(p)) and "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(raw=st.text(max_size=40))
def test_any_set_value_validates_or_fails_cleanly(raw: str) -> None:
    from surgtui.config.load import resolve_data

    try:
        resolve_data({}, "x", "", [f"optim.lr={raw}"], {})
    except ConfigError as exc:
        assert "\n" not in str(exc)
