"""gc_paused: no automatic collection inside, the collector's state restored after, nesting across threads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from stratum_pool.daemon.gcpause import gc_automatic, gc_paused, paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_pause_and_restore() -> None:
    assert not paused() and gc_automatic()
    with gc_paused():
        assert not gc.isenabled() and paused()
        assert gc_automatic()  # on, pauses aside
    assert gc.isenabled() and not paused()


def test_nested_pauses_end_with_the_outermost() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_still_restores() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled() and not paused()


def test_a_process_that_turned_collection_off_keeps_it_off() -> None:
    gc.disable()
    assert not gc_automatic()
    with gc_paused():
        assert not gc_automatic()
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with gc_paused():
        thread.start()
        assert inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause still runs
    release.set()
    thread.join(5)
    assert gc.isenabled()
