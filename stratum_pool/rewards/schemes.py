"""Reward schemes as small plug-ins behind one interface.

A scheme is pure: it gets a block's reward (base units), a window of ``(account_id, weight)`` pairs
(share difficulties; an account may appear many times), the finder, the fee account and the fee rate, and
returns the credits: ``{account_id: amount}``. Which shares form the window is the store's job
(:mod:`stratum_pool.store.shares`); the scheme only names the window it wants in :attr:`RewardScheme.window`:

* ``"finder"`` (SOLO): no shares; the finder gets the reward (the coinbase already paid him: these credits
  are a record, not a debt).
* ``"pplns"``: the last N shares by difficulty, N = ``pplns_window_factor`` x network difficulty.
* ``"round"`` (PROP): the shares since the coin's previous block.

Arithmetic is exact and integer:

* the fee is ``reward * fee_ppm // 1_000_000`` (rounded down, as the solo coinbase's fee output is), credited
  to ``fee_account_id``; with no fee account there is no fee;
* the rest is split in proportion to the weights by the largest-remainder method: each account gets the
  floor of its exact share (weights are floats, converted exactly to integers over their common power-of-two
  denominator), and the units left over go one each to the largest remainders, ties to the lower account id;
* so the credits add up to exactly ``reward``, none is negative, each is within one base unit of its exact
  proportional share, and the result depends only on the inputs (not on the order of the window).

An empty window (or one of zero total weight) gives the whole rest to the finder. Zero amounts are left
out of the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal, Protocol

PPM: Final = 1_000_000
Window = Literal["finder", "pplns", "round"]


class RewardScheme(Protocol):
    name: str
    window: Window

    def credits(self, reward: int, window: Sequence[tuple[int, float]], finder_account_id: int,
                fee_account_id: int | None, fee_ppm: int) -> dict[int, int]:
        """Credits ``{account_id: amount}`` adding up to exactly ``reward``."""
        ...


def pool_fee(reward: int, fee_ppm: int) -> int:
    """The pool's cut of ``reward``: rounded down."""
    if not 0 <= fee_ppm < PPM:
        raise ValueError(f"fee_ppm must be in [0, {PPM}), not {fee_ppm}")
    return reward * fee_ppm // PPM


def split_proportionally(amount: int, weights: Sequence[tuple[int, float]]) -> dict[int, int]:
    """``amount`` split over accounts in proportion to their summed weights (largest remainder, exact).

    Non-positive and non-finite weights are ignored. Returns ``{}`` when no weight is left.
    """
    if amount < 0:
        raise ValueError("amount must not be negative")
    ratios: dict[int, tuple[int, int]] = {}
    max_exp = 0
    for account, weight in weights:
        if not (weight > 0 and math.isfinite(weight)):
            continue
        num, den = float(weight).as_integer_ratio()  # den is a power of two
        ratios.setdefault(account, (0, 1))
        ratios[account] = _add(ratios[account], (num, den))
        max_exp = max(max_exp, den.bit_length() - 1)
    if not ratios:
        return {}
    # every weight as an exact integer over the common denominator 2**max_exp
    scaled = {a: n << (max_exp - (d.bit_length() - 1)) for a, (n, d) in ratios.items()}
    total = sum(scaled.values())
    out: dict[int, int] = {}
    remainders: list[tuple[int, int]] = []
    given = 0
    for account, w in scaled.items():
        q, r = divmod(amount * w, total)
        out[account] = q
        given += q
        remainders.append((r, account))
    left = amount - given  # fewer than len(scaled) units
    remainders.sort(key=lambda ra: (-ra[0], ra[1]))
    for _, account in remainders[:left]:
        out[account] += 1
    return out


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    # both denominators are powers of two: add over the larger
    (an, ad), (bn, bd) = a, b
    if ad < bd:
        (an, ad), (bn, bd) = (bn, bd), (an, ad)
    return an + bn * (ad // bd), ad


def _merge(into: dict[int, int], account: int, amount: int) -> None:
    if amount > 0:
        into[account] = into.get(account, 0) + amount


def _with_fee(reward: int, fee_account_id: int | None, fee_ppm: int) -> tuple[dict[int, int], int]:
    if reward < 0:
        raise ValueError("reward must not be negative")
    fee = pool_fee(reward, fee_ppm) if fee_account_id is not None else 0
    out: dict[int, int] = {}
    if fee_account_id is not None:
        _merge(out, fee_account_id, fee)
    return out, reward - fee


class Solo:
    """The finder takes the reward (less the fee); the coinbase already paid both."""

    name = "solo"
    window: Window = "finder"

    def credits(self, reward: int, window: Sequence[tuple[int, float]], finder_account_id: int,
                fee_account_id: int | None, fee_ppm: int) -> dict[int, int]:
        out, rest = _with_fee(reward, fee_account_id, fee_ppm)
        _merge(out, finder_account_id, rest)
        return out


class _Proportional:
    name = ""
    window: Window = "round"

    def credits(self, reward: int, window: Sequence[tuple[int, float]], finder_account_id: int,
                fee_account_id: int | None, fee_ppm: int) -> dict[int, int]:
        out, rest = _with_fee(reward, fee_account_id, fee_ppm)
        split = split_proportionally(rest, window)
        if not split:
            split = {finder_account_id: rest}
        for account in sorted(split):
            _merge(out, account, split[account])
        return out


class Pplns(_Proportional):
    """Pay per last N shares: the window is the last N difficulty before the block's share."""

    name = "pplns"
    window: Window = "pplns"


class Prop(_Proportional):
    """Proportional: the window is the round, every share since the coin's previous block."""

    name = "prop"
    window: Window = "round"


SCHEMES: Final[dict[str, RewardScheme]] = {s.name: s for s in (Solo(), Pplns(), Prop())}


def scheme_for(name: str) -> RewardScheme:
    """The scheme called ``name`` (``solo``, ``pplns`` or ``prop``); ValueError names the known ones."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown reward scheme {name!r}; known: {', '.join(sorted(SCHEMES))}") from None
