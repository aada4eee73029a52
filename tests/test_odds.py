"""The odds arithmetic against its closed forms, and the hashrate meter's windows against plain sums."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stratum_pool.hashrate import COARSE_SECONDS, FINE_SECONDS, MEDIUM_SECONDS, WINDOWS, RateMeter, WorkerBook
from stratum_pool.odds import (
    PERIODS,
    blocks_per_year,
    chance_of_block,
    chance_within,
    expected_seconds_to_block,
    network_hashrate,
    odds,
)

difficulties = st.floats(min_value=1e-10, max_value=1e15, allow_nan=False, allow_infinity=False)
hashrates = st.floats(min_value=1.0, max_value=1e21, allow_nan=False, allow_infinity=False)
seconds = st.floats(min_value=0.0, max_value=1e10, allow_nan=False, allow_infinity=False)


@given(difficulties, hashrates)
def test_expected_time_is_the_work_of_a_block_over_the_hashrate(nd: float, h: float) -> None:
    expected = expected_seconds_to_block(nd, h)
    assert expected is not None
    assert math.isclose(expected * h, nd * 2**32, rel_tol=1e-12)
    # twice the hashrate, half the wait
    doubled = expected_seconds_to_block(nd, 2 * h)
    assert doubled is not None and math.isclose(doubled, expected / 2, rel_tol=1e-12)


@given(difficulties, hashrates, seconds)
def test_chance_is_one_minus_exp_of_minus_t_over_expected(nd: float, h: float, t: float) -> None:
    expected = expected_seconds_to_block(nd, h)
    assert expected is not None
    p = chance_within(expected, t)
    assert 0.0 <= p <= 1.0
    assert math.isclose(p, 1 - math.exp(-t / expected), rel_tol=1e-9, abs_tol=1e-15)


@given(difficulties, hashrates, seconds, seconds)
def test_chances_over_two_spans_combine_as_independent_trials(nd: float, h: float, a: float, b: float) -> None:
    expected = expected_seconds_to_block(nd, h)
    no_block = (1 - chance_within(expected, a)) * (1 - chance_within(expected, b))
    assert math.isclose(1 - chance_within(expected, a + b), no_block, rel_tol=1e-9, abs_tol=1e-12)


@given(difficulties, hashrates)
def test_chance_of_block_per_period_grows_with_the_period(nd: float, h: float) -> None:
    chances = chance_of_block(expected_seconds_to_block(nd, h))
    assert list(chances) == ["day", "week", "month", "year"]
    values = list(chances.values())
    assert values == sorted(values)
    expected = nd * 2**32 / h
    for name, p in chances.items():
        assert math.isclose(p, -math.expm1(-PERIODS[name] / expected), rel_tol=1e-9, abs_tol=1e-300)


@given(difficulties, hashrates)
def test_blocks_per_year_and_network_hashrate(nd: float, h: float) -> None:
    assert math.isclose(blocks_per_year(nd, h), 365 * 86400 * h / (nd * 2**32), rel_tol=1e-12)
    net = network_hashrate(nd, 600)
    assert net is not None
    # the network's own hashrate finds a block every 600 s: 52,560 a year
    assert math.isclose(blocks_per_year(nd, net), 365 * 86400 / 600, rel_tol=1e-9)


def test_no_hashrate_or_no_difficulty_means_no_odds() -> None:
    for nd, h in ((None, 1e12), (0.0, 1e12), (1e6, 0.0)):
        assert odds(nd, h) == {"expected_seconds_to_block": None,
                               "chance_of_block": {"day": 0.0, "week": 0.0, "month": 0.0, "year": 0.0}}
        assert blocks_per_year(nd, h) == 0.0


def test_a_bitaxe_on_bitcoin_mainnet() -> None:
    # 1.2 TH/s against difficulty 100e12: one block in ~11,300 years
    expected = expected_seconds_to_block(100e12, 1.2e12)
    assert expected is not None and round(expected / PERIODS["year"]) == 11349
    assert math.isclose(chance_of_block(expected)["year"], 8.81e-5, rel_tol=1e-3)


# ----- the meter


shares_strategy = st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=1.0, max_value=1e9)),
                           min_size=1, max_size=200)


@given(st.floats(min_value=1e6, max_value=2e9), st.floats(min_value=1.0, max_value=86000.0), shares_strategy)
def test_a_young_meter_is_judged_on_its_own_time(start: float, age: float, shares: list[tuple[float, float]]) -> None:
    """Shares anywhere since the meter started: every window younger than the meter's age covers all of them
    over exactly that age."""
    meter = RateMeter(start)
    now = start + age
    for fraction, hashes in sorted(shares):
        meter.add(start + fraction * age, hashes)
    total = sum(h for _, h in shares)
    for name, window in WINDOWS.items():
        rate = meter.rate(now, window)
        width = FINE_SECONDS if window <= 600 else MEDIUM_SECONDS if window <= 3600 else COARSE_SECONDS
        if age <= window - width:
            assert rate.shares == len(shares)
            assert rate.seconds == now - start
            assert math.isclose(rate.hashrate, total / (now - start), rel_tol=1e-9), name


@given(st.floats(min_value=1e6, max_value=2e9), shares_strategy)
def test_an_old_meter_covers_whole_buckets_of_the_window(start: float, shares: list[tuple[float, float]]) -> None:
    """A meter older than the window: the figure is the work of the buckets that start inside the window over
    the time from the first of them, between the window less one bucket and the window."""
    meter = RateMeter(start)
    now = start + 5000.0
    times = [start + fraction * 5000.0 for fraction, _ in sorted(shares)]
    for t, (_, hashes) in zip(times, sorted(shares), strict=True):
        meter.add(t, hashes)
    rate = meter.rate(now, 600.0)
    first = math.ceil((now - 600.0) / FINE_SECONDS) * FINE_SECONDS
    inside = [h for t, (_, h) in zip(times, sorted(shares), strict=True) if t - t % FINE_SECONDS >= first]
    assert 590.0 <= rate.seconds <= 600.0
    assert rate.shares == len(inside)
    assert math.isclose(rate.hashrate * rate.seconds, sum(inside), rel_tol=1e-9, abs_tol=1e-9)


@given(st.floats(min_value=1e6, max_value=2e9), st.floats(min_value=1.0, max_value=3500.0), shares_strategy)
def test_history_buckets_hold_every_share(start: float, age: float, shares: list[tuple[float, float]]) -> None:
    """Whatever buckets the work sits in (the open 10-second one, or folded into longer ones), the last hour's
    history per minute holds all of it, each share in the minute of its time."""
    meter = RateMeter(start)
    now = start + age
    times = [start + fraction * age for fraction, _ in sorted(shares)]
    for t, (_, hashes) in zip(times, sorted(shares), strict=True):
        meter.add(t, hashes)
    end = math.floor(now / 60) * 60 + 60
    history = meter.history(end - 3600, end, 60.0)
    expected: dict[float, float] = {}
    for t, (_, hashes) in zip(times, sorted(shares), strict=True):
        expected[t - t % 60] = expected.get(t - t % 60, 0.0) + hashes
    assert history.keys() == expected.keys()
    for key, hashes in expected.items():
        assert math.isclose(history[key], hashes, rel_tol=1e-9)
    # and the day's, per 10 minutes, from the 10-minute buckets
    day_end = math.floor(now / 600) * 600 + 600
    day = meter.history(day_end - 86400, day_end, 600.0)
    assert math.isclose(sum(day.values()), sum(h for _, h in shares), rel_tol=1e-9)


def test_worker_book_best_shares_and_rounds() -> None:
    book = WorkerBook(max_workers=2)
    book.authorized("addr.a", "addr", 100.0)
    book.accepted("addr.a", "addr", 101.0, 10.0, 5.0)
    book.accepted("addr.a", "addr", 102.0, 10.0, 3.0)
    (a,) = book.of_address("addr")
    assert (a.name, a.best_session, a.best_ever, book.best_round(a)) == ("a", 5.0, 5.0, 5.0)
    book.new_block()
    assert book.best_round(a) == 0.0  # a new network block: the best since it starts again
    book.accepted("addr.a", "addr", 103.0, 10.0, 2.0)
    assert book.best_round(a) == 2.0
    book.authorized("addr.a", "addr", 104.0)  # a new session of the same worker
    assert (a.best_session, a.best_ever) == (0.0, 5.0)
    # at most two workers: the one idle longest goes
    book.authorized("addr.b", "addr", 105.0)
    book.accepted("addr.b", "addr", 106.0, 1.0, 1.0)
    book.authorized("other.c", "other", 107.0)
    assert [w.name for w in book.of_address("addr")] == ["b"]
    assert [w.name for w in book.of_address("other")] == ["c"]


def test_a_meter_keeps_bounded_buckets_over_days_and_drops_the_oldest() -> None:
    """A share every 7 s for three days into a worker's meter (24 h kept): each bucket list stays within its
    bound, begins where its keep says, and the day's figure is the last day's work."""
    start = 1_700_000_000.0
    meter = RateMeter(start, keep=86400.0)
    t = start
    while t < start + 3 * 86400.0:
        meter.add(t, 1.0)
        t += 7.0
    now = t
    for buckets, bound in ((meter._fine, 61), (meter._medium, 61), (meter._coarse, 145)):
        assert len(buckets.items) <= bound + 1
        assert buckets.items[0][0] >= now - buckets.keep - 2 * buckets.width
        assert [b[0] for b in buckets.items] == sorted(b[0] for b in buckets.items)
    day = meter.rate(now, 86400.0)
    assert 86400.0 - COARSE_SECONDS <= day.seconds <= 86400.0
    assert abs(day.shares - day.seconds / 7.0) <= 2


def test_an_idle_workers_meter_is_small() -> None:
    """Every authorized worker gets a meter, shares or not: 10,000 idle workers must not cost tens of MB (empty
    deques cost 760 bytes each, three to a meter)."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        meters = [RateMeter(1_700_000_000.0) for _ in range(1000)]
        size = (tracemalloc.get_traced_memory()[0] - before) / len(meters)
    finally:
        tracemalloc.stop()
    assert size < 600, f"{size:.0f} bytes per idle meter"
