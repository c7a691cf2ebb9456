"""An A/B test run honestly: each key in one arm, always the same, recorded on its rows.

    from audited_openai import ab

    with ab.experiment("definitie-v2.1", begrip, {"2.0": 0.5, "2.1": 0.5}) as version:
        prompt = build_prompt(begrip, template_version=version)
        client.chat.completions.create(...)   # its rows carry experiment and arm

The arm is chosen from the key (the begrip) alone, so regenerating a begrip keeps it in
its arm, and the same on every machine and in every release: the first 8 bytes of
``SHA-256(salt, NUL, key)`` as a fraction of 2**64, placed on the arms' weights in the
order of the arms' names. A new salt (by default the experiment's name) deals the keys
again, independently of every other experiment.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from typing import TYPE_CHECKING

from audited_openai._context import audit_context

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["choose", "experiment"]


def choose(key: str, arms: Mapping[str, float], *, salt: str = "") -> str:
    """The arm of ``key``: the same for the same key, salt and arms.

    Each arm is chosen as often as its weight (the weights need not add up to 1).
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"the key must be a non-empty string, not {key!r}")
    if not isinstance(salt, str):
        raise TypeError(f"the salt must be a string, not {salt!r}")
    weights = _checked(arms)
    point = int.from_bytes(hashlib.sha256(f"{salt}\0{key}".encode()).digest()[:8], "big")
    target = point / 2**64 * sum(weights.values())
    reached = 0.0
    for name, weight in weights.items():
        reached += weight
        if target < reached:
            return name
    return next(reversed(weights))  # float rounding at the very top of the range


@contextlib.contextmanager
def experiment(
    name: str, key: str, arms: Mapping[str, float], *, salt: str | None = None
) -> Iterator[str]:
    """Choose ``key``'s arm and record it on the rows of the calls inside.

    The salt is ``name`` unless ``salt`` is given; the rows' metadata gets
    ``{"experiment": name, "arm": arm}`` beside the app's own.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"the experiment's name must be a non-empty string, not {name!r}")
    arm = choose(key, arms, salt=name if salt is None else salt)
    with audit_context(metadata={"experiment": name, "arm": arm}):
        yield arm


def _checked(arms: Mapping[str, float]) -> dict[str, float]:
    """The arms by name, each weight a finite number above 0."""
    if not hasattr(arms, "items") or not arms:
        raise ValueError(f"arms must be a non-empty mapping of name to weight, not {arms!r}")
    weights: dict[str, float] = {}
    for name, weight in sorted(arms.items(), key=lambda item: str(item[0])):
        if not isinstance(name, str) or not name:
            raise TypeError(f"an arm's name must be a non-empty string, not {name!r}")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise ValueError(f"the weight of arm {name!r} must be a number above 0, not {weight!r}")
        weights[name] = float(weight)
    return weights
