"""How a settings dataclass declares its config keys, so each key, default and bound is written once.

A field that is a config key carries a :class:`Rule` in its metadata::

    port: int = field(default=8080, metadata=between(0, 65535))

The key is the field's name, its TOML type the field's type (``Rule.kind`` when they differ), its default the
field's default (a field without one is required), and the rule says which values are allowed and the words
that name them in an error. ``config.py`` walks ``dataclasses.fields()`` to read a TOML table into the class.

Imports nothing from the package: ``server/limits.py`` declares its settings with it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RULE = "stratum_pool.setting"


@dataclass(frozen=True, slots=True)
class Rule:
    """What one config key may hold: the values of its kind that pass ``check``."""

    check: Callable[[Any], bool] = lambda _: True
    allowed: str = ""  # what is allowed, for the error ("0..65535", "at least 1")
    kind: type | None = None  # the TOML type when it is not the field's type (a list read into a tuple)
    table: bool = False  # its own TOML table (or array of tables), read by the loader itself


def rule(check: Callable[[Any], bool] | None = None, allowed: str = "", kind: type | None = None,
         table: bool = False) -> Mapping[str, Rule]:
    """Field metadata: a key whose values pass ``check`` (``allowed`` names them); no check: any value."""
    return {RULE: Rule(allowed=allowed, kind=kind, table=table) if check is None
            else Rule(check, allowed, kind, table)}


ANY = rule()  # any value of the field's type
TABLE = rule(table=True)


def between(low: float, high: float, unit: str = "") -> Mapping[str, Rule]:
    """``low <= value <= high``, e.g. ``0..65535`` or ``2..8 bytes``."""
    return rule(lambda v: low <= v <= high, f"{low}..{high}{' ' + unit if unit else ''}")


def at_least(low: float, allowed: str = "") -> Mapping[str, Rule]:
    return rule(lambda v: v >= low, allowed or f"at least {low}")


def above(low: float, at_most: float | None = None, allowed: str = "") -> Mapping[str, Rule]:
    """``low < value`` (and ``value <= at_most`` when given)."""
    if at_most is None:
        return rule(lambda v: v > low, allowed or f"above {low}")
    high = at_most
    return rule(lambda v: low < v <= high, allowed or f"above {low}, at most {high}")


def one_of(values: Iterable[str], allowed: str = "") -> Mapping[str, Rule]:
    choices = tuple(values)
    return rule(lambda v: v in choices, allowed or f"one of {', '.join(choices)}")


PORT = between(0, 65535)
is_port = PORT[RULE].check
