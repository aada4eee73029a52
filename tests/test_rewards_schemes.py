"""Reward schemes: exact integer credits, adding up to the block reward."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.rewards.schemes import Pplns, Prop, Solo, pool_fee, scheme_for, split_proportionally

FINDER, FEE = 1, 999

rewards = st.integers(0, 21_000_000 * 10**8)
fees = st.integers(0, 999_999)
weights = st.floats(min_value=1e-9, max_value=1e15, allow_nan=False, allow_infinity=False)
windows = st.lists(st.tuples(st.integers(1, 30), weights), max_size=60)
schemes = st.sampled_from([Solo(), Pplns(), Prop()])


@given(scheme=schemes, reward=rewards, window=windows, fee_ppm=fees, with_fee=st.booleans())
def test_credits_add_up_exactly_to_the_reward(scheme: Solo, reward: int, window: list[tuple[int, float]],
                                              fee_ppm: int, with_fee: bool) -> None:
    credits = scheme.credits(reward, window, FINDER, FEE if with_fee else None, fee_ppm)
    assert sum(credits.values()) == reward
    assert all(amount > 0 for amount in credits.values())


@given(scheme=schemes, reward=rewards, window=windows, fee_ppm=fees)
def test_fee_is_the_rounded_down_share_of_the_reward(scheme: Solo, reward: int, window: list[tuple[int, float]],
                                                      fee_ppm: int) -> None:
    credits = scheme.credits(reward, window, FINDER, FEE, fee_ppm)
    assert credits.get(FEE, 0) == reward * fee_ppm // 1_000_000


@given(reward=rewards, window=windows.filter(bool), fee_ppm=fees)
def test_each_miner_gets_his_exact_share_within_one_base_unit(reward: int, window: list[tuple[int, float]],
                                                              fee_ppm: int) -> None:
    credits = Pplns().credits(reward, window, FINDER, FEE, fee_ppm)
    rest = reward - pool_fee(reward, fee_ppm)
    total = sum(Fraction(w) for _, w in window)
    for account in {a for a, _ in window}:
        exact = rest * sum(Fraction(w) for a, w in window if a == account) / total
        assert abs(credits.get(account, 0) - exact) < 1


@given(reward=rewards, window=windows, fee_ppm=fees, order=st.randoms())
def test_credits_do_not_depend_on_the_window_order(reward: int, window: list[tuple[int, float]], fee_ppm: int,
                                                   order: object) -> None:
    shuffled = list(window)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    assert Prop().credits(reward, window, FINDER, FEE, fee_ppm) == Prop().credits(reward, shuffled, FINDER, FEE,
                                                                                   fee_ppm)


def test_ties_in_the_remainder_go_to_the_lower_account() -> None:
    assert split_proportionally(10, [(7, 1.0), (3, 1.0), (5, 1.0)]) == {3: 4, 5: 3, 7: 3}
    assert split_proportionally(1, [(2, 1.0), (1, 1.0)]) == {1: 1, 2: 0}


def test_solo_pays_the_finder_and_the_fee_only() -> None:
    credits = Solo().credits(5_000_000_000, [(2, 10.0), (3, 5.0)], FINDER, FEE, 10_000)
    assert credits == {FINDER: 4_950_000_000, FEE: 50_000_000}


def test_without_a_fee_account_there_is_no_fee() -> None:
    assert Solo().credits(1000, [], FINDER, None, 500_000) == {FINDER: 1000}


def test_empty_window_pays_the_finder() -> None:
    assert Pplns().credits(1000, [], FINDER, FEE, 10_000) == {FINDER: 990, FEE: 10}
    assert Prop().credits(1000, [(4, 0.0)], FINDER, FEE, 0) == {FINDER: 1000}


def test_fractional_weights_split_exactly() -> None:
    credits = Pplns().credits(100, [(1, 0.5), (2, 0.25), (2, 0.25)], FINDER, None, 0)
    assert credits == {1: 50, 2: 50}


def test_fee_account_that_also_mined_gets_both() -> None:
    credits = Prop().credits(1000, [(FEE, 1.0), (2, 1.0)], FINDER, FEE, 100_000)
    assert credits == {FEE: 100 + 450, 2: 450}


def test_scheme_for_names_the_known_schemes() -> None:
    assert scheme_for("pplns").window == "pplns"
    assert scheme_for("prop").window == "round"
    assert scheme_for("solo").window == "finder"
    with pytest.raises(ValueError, match="pplns, prop, solo"):
        scheme_for("pps")


def test_fee_rate_must_be_below_everything() -> None:
    with pytest.raises(ValueError):
        pool_fee(100, 1_000_000)
