"""Vardiff arithmetic with explicit times."""

from __future__ import annotations

from typing import Any

import pytest

from stratum_pool.shares.reference import ReferenceVardiff
from stratum_pool.shares.vardiff import Vardiff as NativeVardiff
from stratum_pool.shares.vardiff import VardiffConfig


@pytest.fixture(params=[NativeVardiff, ReferenceVardiff], ids=["core", "reference"], name="Vardiff")
def vardiff_class(request: pytest.FixtureRequest) -> Any:
    """Every behaviour holds for the share core's controller and for its pure-Python twin."""
    return request.param


CONFIG = VardiffConfig(target_interval=15, retarget_interval=90, window=20, max_step=4, variance=0.3)


def test_fast_shares_raise_the_difficulty_by_at_most_max_step(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 1.0, now=0)
    changes = [v.record_share(0.1 * i) for i in range(1, 21)]
    assert changes[:-1] == [None] * 19 and changes[-1] == 4.0


def test_shares_at_the_target_interval_keep_the_difficulty(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 8.0, now=0)
    assert all(v.record_share(15.0 * i) is None for i in range(1, 40))
    assert v.difficulty == 8.0


def test_silence_lowers_on_tick_and_not_before_the_retarget_interval(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 8.0, now=0)
    assert v.tick(60) is None
    assert v.tick(120) == 2.0
    assert v.tick(150) is None  # the next step waits another interval
    assert v.tick(240) == 0.5


def test_slow_shares_lower_proportionally(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 8.0, now=0)
    assert v.record_share(30) is None
    assert v.record_share(60) is None
    assert v.record_share(90) == 4.0  # one share per 30 s where 15 s was wanted


def test_tick_leaves_a_session_with_enough_shares_alone(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 8.0, now=0)
    for t in range(14, 85, 14):
        assert v.record_share(t) is None
    assert v.tick(95) is None and v.difficulty == 8.0


def test_fractional_difficulty_goes_down_to_the_minimum(Vardiff: Any) -> None:
    config = VardiffConfig(target_interval=15, retarget_interval=90, max_step=4, minimum=1e-9)
    v = Vardiff(config, 1e-8, now=0)
    assert v.tick(100) == 2.5e-9
    assert v.tick(200) == 1e-9
    assert v.tick(300) is None


def test_maximum_and_floor_bound_the_difficulty(Vardiff: Any) -> None:
    config = VardiffConfig(maximum=100)
    v = Vardiff(config, 1000, now=0)
    assert v.difficulty == 100
    v.set_floor(50)
    assert v.restart(10, now=0) == 50


def test_disabled_vardiff_never_changes(Vardiff: Any) -> None:
    v = Vardiff(CONFIG, 8.0, now=0, enabled=False)
    assert v.tick(10_000) is None
    assert all(v.record_share(0.01 * i) is None for i in range(100))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_nonsense_starts_are_clamped(Vardiff: Any, bad: float) -> None:
    v = Vardiff(VardiffConfig(minimum=1e-3, maximum=1e6), bad, now=0)
    assert 1e-3 <= v.difficulty <= 1e6


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        VardiffConfig(max_step=1)
    with pytest.raises(ValueError):
        VardiffConfig(minimum=2, maximum=1)
