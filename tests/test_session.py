"""The Stratum session, lines in and lines out: no sockets, no daemon, a hand-driven clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from miner import FakeWork, NotifiedJob, find_share, make_job

from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import get_coin
from stratum_pool.jobs.job import Job
from stratum_pool.protocol import messages as msg
from stratum_pool.protocol.actions import (
    Action,
    Authorized,
    BlockCandidate,
    Close,
    Send,
    ShareAccepted,
    ShareRejected,
)
from stratum_pool.protocol.session import Session, SessionConfig, password_difficulty
from stratum_pool.shares.vardiff import VardiffConfig

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qgoodaddress"
EN1 = bytes.fromhex("0000002a")
NOW = 1_700_000_100.0
EASY = 2e-7  # a few hundred pure-Python hashes per share
NO_BLOCK = 2**200  # a network target no test share reaches


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q") and "bad" not in address:
        return b"\x00\x14" + bytes(20)
    raise ValueError("checksum mismatch")


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Harness:
    """A session plus what a miner would see: decoded lines, events, the jobs as notified."""

    def __init__(self, work: FakeWork | None = None, en1: bytes = EN1, **config: Any) -> None:
        config.setdefault("initial_difficulty", EASY)
        self.config = SessionConfig(COIN, **config)
        self.work = work if work is not None else FakeWork()
        if self.work.current is None:
            self.work.add(make_job("j1", target=NO_BLOCK))
        self.clock = Clock()
        self.session = Session(self.config, self.work, check_address, "s1", en1, self.clock)
        self.next_id = 1
        self.difficulty = 0.0  # what the miner was told last
        self.jobs: dict[str, NotifiedJob] = {}
        self.en2 = 0

    def feed(self, line: bytes) -> list[Action]:
        actions = self.session.feed_line(line)
        self.observe(actions)
        return actions

    def observe(self, actions: list[Action]) -> None:
        """Apply server messages like a Bitaxe: a difficulty counts for jobs notified after it."""
        for message in lines(actions):
            if message.get("method") == "mining.set_difficulty":
                self.difficulty = message["params"][0]
            elif message.get("method") == "mining.notify":
                job = NotifiedJob.from_params(message["params"], self.difficulty)
                self.jobs[job.job_id] = job

    def call(self, method: str, params: list[Any]) -> tuple[dict[str, Any], list[Action]]:
        rid = self.next_id
        self.next_id += 1
        actions = self.feed(orjson.dumps({"id": rid, "method": method, "params": params}))
        answers = [m for m in lines(actions) if m.get("id") == rid and m.get("method") is None]
        assert len(answers) == 1, answers
        return answers[0], actions

    def push(self, job: Job, clean: bool = False) -> list[Action]:
        self.work.add(job)
        actions = self.session.push_job(job, clean)
        self.observe(actions)
        return actions

    def esp_miner_handshake(self, suggest: float | None = None, password: str = "x") -> list[Action]:
        self.call("mining.subscribe", ["bitaxe/BM1370/v2.4.0"])
        self.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}])
        if suggest is not None:
            self.call("mining.suggest_difficulty", [suggest])
        _, actions = self.call("mining.authorize", [f"{ADDRESS}.bitaxe", password])
        return actions

    def share(self, job_id: str, low: float | None = None, high: float | None = None,
              version_bits: int = 0) -> dict[str, str | None]:  # fmt: skip
        """A share of a notified job with difficulty in [low, high) (default: the job's difficulty)."""
        job = self.jobs[job_id]
        self.en2 += 1
        mask = self.session.version_mask
        found = find_share(
            COIN, job, self.session.extranonce1, self.en2.to_bytes(self.config.extranonce2_size, "big"),
            min_difficulty=low if low is not None else job.difficulty, max_difficulty=high,
            version_bits=version_bits, version_mask=mask, send_version=mask != 0,
        )  # fmt: skip
        return {"job_id": found.job_id, "en2": found.extranonce2, "ntime": found.ntime,
                "nonce": found.nonce, "version": found.version_bits}  # fmt: skip

    def submit(self, share: dict[str, str | None], worker: str = f"{ADDRESS}.bitaxe",
               **override: str) -> tuple[dict[str, Any], list[Action]]:  # fmt: skip
        s = {**share, **override}
        params = [worker, s["job_id"], s["en2"], s["ntime"], s["nonce"]]
        if s.get("version") is not None:
            params.append(s["version"])
        return self.call("mining.submit", params)


def lines(actions: list[Action]) -> list[dict[str, Any]]:
    out = []
    for action in actions:
        if isinstance(action, Send):
            assert action.data.endswith(b"\n")
            out += [orjson.loads(x) for x in action.data.splitlines()]
    return out


def methods(actions: list[Action]) -> list[str]:
    return [m["method"] for m in lines(actions) if m.get("method")]


def of_type(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def error_code(answer: dict[str, Any]) -> int | None:
    return answer["error"][0] if answer["error"] else None


# ----- handshakes in the orders real miners use


def test_subscribe_answer_has_subscriptions_extranonce1_and_size() -> None:
    h = Harness()
    answer, _ = h.call("mining.subscribe", ["cgminer/4.12"])
    assert answer["result"] == [
        [["mining.set_difficulty", "s1"], ["mining.notify", "s1"]], EN1.hex(), 4,
    ]  # fmt: skip
    assert answer["error"] is None


def test_esp_miner_order_gets_difficulty_then_notify_after_authorize() -> None:
    h = Harness()
    actions = h.esp_miner_handshake(suggest=1000)
    answer = lines(actions)[0]
    assert answer["result"] is True
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    assert lines(actions)[1]["params"] == [1000]
    assert of_type(actions, Authorized) == [Authorized("s1", f"{ADDRESS}.bitaxe", ADDRESS)]
    assert h.session.payout_key == ADDRESS


def test_cgminer_order_configure_first_then_subscribe_authorize_and_mine() -> None:
    h = Harness()
    answer, _ = h.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "1fffe000"}])
    assert answer["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000"}
    h.call("mining.subscribe", ["cgminer/4.12"])
    _, actions = h.call("mining.authorize", [ADDRESS, "x"])
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    answer, actions = h.submit(h.share("j1", version_bits=0x00006000), worker=ADDRESS)
    assert answer["result"] is True, answer
    assert of_type(actions, ShareAccepted)[0].worker == ADDRESS


def test_cpuminer_never_configures_and_submits_five_params() -> None:
    h = Harness()
    h.call("mining.subscribe", ["cpuminer/2.5"])
    h.call("mining.authorize", [f"{ADDRESS}.cpu", ""])
    answer, actions = h.submit(h.share("j1"), worker=f"{ADDRESS}.cpu")
    assert answer == {"id": answer["id"], "result": True, "error": None}
    accepted = of_type(actions, ShareAccepted)[0]
    assert accepted.difficulty == EASY and accepted.achieved >= EASY and not accepted.block


def test_authorize_before_subscribe_starts_work_on_subscribe() -> None:
    h = Harness()
    _, actions = h.call("mining.authorize", [ADDRESS, "x"])
    assert methods(actions) == []
    _, actions = h.call("mining.subscribe", [])
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]


def test_push_job_before_authorize_sends_nothing() -> None:
    h = Harness()
    h.call("mining.subscribe", [])
    assert h.session.push_job(make_job("j2"), True) == []


def test_push_job_sends_pending_difficulty_first() -> None:
    h = Harness()
    h.esp_miner_handshake()
    assert methods(h.push(make_job("j2"), clean=True)) == ["mining.notify"]
    h.session.vardiff.restart(4 * EASY, NOW)
    actions = h.push(make_job("j3"))
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    assert lines(actions)[1]["params"][-1] is False


# ----- errors 20..25


def test_unknown_method_is_error_20_and_the_connection_stays() -> None:
    h = Harness()
    answer, actions = h.call("mining.get_transactions", [])
    assert error_code(answer) == 20 and "mining.get_transactions" in answer["error"][1]
    assert answer["error"][2] is None
    assert not of_type(actions, Close)


def test_unparseable_line_is_answered_and_closed() -> None:
    h = Harness()
    actions = h.feed(b"GET / HTTP/1.1")
    assert error_code(lines(actions)[0]) == 20
    assert of_type(actions, Close)


def test_request_with_bad_params_is_answered_by_id() -> None:
    h = Harness()
    actions = h.feed(b'{"id": 7, "method": "mining.subscribe", "params": {"a": 1}}')
    assert [(m["id"], error_code(m)) for m in lines(actions)] == [(7, 20)]
    assert not of_type(actions, Close)


def test_blank_lines_and_miner_responses_are_ignored() -> None:
    h = Harness()
    assert h.feed(b"  \r") == []
    assert h.feed(b'{"id": 3, "result": "cgminer/4.12", "error": null}') == []


def test_submit_before_subscribe_is_error_25() -> None:
    h = Harness()
    answer, actions = h.call("mining.submit", [ADDRESS, "j1", "00000001", "6553f104", "00000000"])
    assert error_code(answer) == 25
    assert of_type(actions, ShareRejected)[0].reason == "not-subscribed"


def test_submit_by_unauthorized_worker_is_error_24() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1"), worker=f"{ADDRESS}.other")
    assert error_code(answer) == 24
    assert of_type(actions, ShareRejected)[0].reason == "unauthorized"


def test_authorize_with_bad_address_is_false_with_error_24_and_the_checkers_message() -> None:
    h = Harness()
    h.call("mining.subscribe", [])
    answer, actions = h.call("mining.authorize", ["bcrt1qbadaddress.rig1", "x"])
    assert answer["result"] is False
    assert error_code(answer) == 24 and "checksum mismatch" in answer["error"][1]
    assert methods(actions) == [] and not of_type(actions, Authorized)
    assert h.session.payout_key == ""


def test_second_address_on_one_connection_is_refused() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, _ = h.call("mining.authorize", ["bcrt1qotheraddress", "x"])
    assert error_code(answer) == 24
    answer, _ = h.call("mining.authorize", [f"{ADDRESS}.second", "x"])
    assert answer["result"] is True


def test_unknown_job_is_error_21() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1"), job_id="nosuchjob")
    assert error_code(answer) == 21
    assert of_type(actions, ShareRejected)[0].reason == "unknown-job"


def test_share_of_previous_block_is_stale_error_21() -> None:
    h = Harness()
    h.esp_miner_handshake()
    share = h.share("j1")
    h.push(make_job("j2", prevhash=b"\x11" * 32, height=102, target=NO_BLOCK), clean=True)
    answer, actions = h.submit(share)
    assert error_code(answer) == 21
    assert of_type(actions, ShareRejected)[0].reason == "stale"


def test_duplicate_is_error_22_and_the_connection_stays() -> None:
    h = Harness()
    h.esp_miner_handshake()
    share = h.share("j1")
    assert h.submit(share)[0]["result"] is True
    answer, actions = h.submit(share)
    assert error_code(answer) == 22
    assert of_type(actions, ShareRejected)[0].reason == "duplicate"
    assert not of_type(actions, Close)


def test_true_duplicate_after_reconnect_is_22_never_a_close() -> None:
    work = FakeWork()
    work.add(make_job("j1", target=NO_BLOCK))
    first = Harness(work)
    first.esp_miner_handshake()
    share = first.share("j1")
    assert first.submit(share)[0]["result"] is True
    # the reconnected Bitaxe gets the same extranonce1 from a session sharing the rules and the book
    second = Harness(work)
    second.session = Session(second.config, work, check_address, "s2", EN1, second.clock,
                             rules=first.session.rules)  # fmt: skip
    second.esp_miner_handshake()
    answer, actions = second.submit(share)
    assert error_code(answer) == 22
    assert not of_type(actions, Close)


def test_low_difficulty_is_error_23() -> None:
    h = Harness(initial_difficulty=4 * EASY)
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1", low=EASY / 4, high=2 * EASY))
    assert error_code(answer) == 23
    rejected = of_type(actions, ShareRejected)[0]
    assert (rejected.code, rejected.reason, rejected.worker) == (23, "low-difficulty", f"{ADDRESS}.bitaxe")


# ----- share field checks


def test_one_byte_extranonce2_is_error_20_naming_the_expected_length() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1"), en2="01")
    assert error_code(answer) == 20
    assert "8 hex characters" in answer["error"][1]
    assert of_type(actions, ShareRejected)[0].reason == "bad-extranonce2"


def test_configured_extranonce2_size_is_announced_and_enforced() -> None:
    h = Harness(extranonce2_size=8)
    answer, _ = h.call("mining.subscribe", [])
    assert answer["result"][2] == 8
    h.call("mining.authorize", [ADDRESS, "x"])
    assert h.submit(h.share("j1"), worker=ADDRESS)[0]["result"] is True
    assert error_code(h.submit(h.share("j1"), worker=ADDRESS, en2="00000001")[0]) == 20


def test_ntime_far_in_the_future_is_rejected() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1"), ntime=f"{int(NOW) + 7201:08x}")
    assert error_code(answer) == 20 and "future" in answer["error"][1]
    assert of_type(actions, ShareRejected)[0].reason == "bad-ntime"


def test_ntime_before_the_template_mintime_is_rejected() -> None:
    h = Harness(work=FakeWork())
    h.work.add(make_job("j9", mintime=1_700_000_000, target=NO_BLOCK))
    h.esp_miner_handshake()
    answer, _ = h.submit(h.share("j9"), ntime=f"{1_699_999_999:08x}")
    assert error_code(answer) == 20


@pytest.mark.parametrize("field,value", [("nonce", "123"), ("nonce", "zzzzzzzz"), ("ntime", "1234567")])
def test_malformed_hex_fields_are_error_20(field: str, value: str) -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, _ = h.submit(h.share("j1"), **{field: value})
    assert error_code(answer) == 20


def test_submit_with_wrong_param_count_is_error_20() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, _ = h.call("mining.submit", [f"{ADDRESS}.bitaxe", "j1", "00000001"])
    assert error_code(answer) == 20


# ----- version rolling (BIP310)


@pytest.mark.parametrize(
    "requested,answered", [("ffffffff", "1fffe000"), ("00ffe000", "00ffe000"), ("1fffffff", "1fffe000")]
)
def test_version_mask_is_the_intersection_of_requested_and_allowed(requested: str, answered: str) -> None:
    h = Harness()
    answer, _ = h.call("mining.configure", [["version-rolling"], {"version-rolling.mask": requested}])
    assert answer["result"] == {"version-rolling": True, "version-rolling.mask": answered}
    assert h.session.version_mask == int(answered, 16)


def test_version_rolling_refused_when_nothing_overlaps() -> None:
    h = Harness()
    answer, _ = h.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "00000fff"}])
    assert answer["result"]["version-rolling"] is False


def test_rolled_version_share_is_accepted_and_hashed_with_the_rolled_version() -> None:
    h = Harness(work=FakeWork())
    h.work.add(make_job("j1", target=2**255))  # regtest: every share is a block
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1", version_bits=0x1FFFE000))
    assert answer["result"] is True
    candidate = of_type(actions, BlockCandidate)[0]
    assert int.from_bytes(candidate.header[:4], "little") == 0x20000000 | 0x1FFFE000
    assert candidate.block_hash == sha256d(candidate.header) == candidate.pow_hash
    assert candidate.extranonce1 == EN1 and candidate.worker == f"{ADDRESS}.bitaxe"
    accepted = of_type(actions, ShareAccepted)[0]
    assert accepted.block and accepted.height == 101


def test_version_bits_outside_the_negotiated_mask_are_error_20() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.submit(h.share("j1"), version="40000000")
    assert error_code(answer) == 20
    assert answer["error"][1] == "version bits outside the negotiated mask"
    assert of_type(actions, ShareRejected)[0].reason == "bad-version"


def test_version_bits_without_configure_must_be_zero() -> None:
    h = Harness()
    h.call("mining.subscribe", [])
    h.call("mining.authorize", [ADDRESS, "x"])
    share = h.share("j1")
    assert error_code(h.submit(share, worker=ADDRESS, version="00002000")[0]) == 20
    assert h.submit(share, worker=ADDRESS, version="00000000")[0]["result"] is True


def test_configure_reports_other_extensions() -> None:
    h = Harness()
    answer, _ = h.call(
        "mining.configure",
        [["minimum-difficulty", "subscribe-extranonce", "info"], {"minimum-difficulty.value": 2048}],
    )
    assert answer["result"] == {"minimum-difficulty": True, "subscribe-extranonce": True, "info": False}


# ----- difficulty from the miner


@pytest.mark.parametrize(
    "password,expected",
    [
        ("d=1000", 1000.0), ("x,d=0.5", 0.5), ("x, d=2048 ,y", 2048.0),
        ("x", None), ("d=abc", None), ("d=-1", None),
    ],
)
def test_password_difficulty(password: str, expected: float | None) -> None:
    assert password_difficulty(password) == expected


def test_password_d_sets_the_starting_difficulty() -> None:
    h = Harness()
    h.call("mining.subscribe", [])
    _, actions = h.call("mining.authorize", [ADDRESS, "x,d=0.5"])
    assert lines(actions)[1] == {"id": None, "method": "mining.set_difficulty", "params": [0.5]}
    assert h.session.vardiff.enabled


def test_suggest_difficulty_after_authorize_takes_effect_with_a_fresh_notify() -> None:
    h = Harness()
    h.esp_miner_handshake()
    answer, actions = h.call("mining.suggest_difficulty", [1000])
    assert answer["result"] is True
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    assert lines(actions)[1]["params"] == [1000]
    assert lines(actions)[2]["params"][-1] is True  # clean: miners switch to the new difficulty at once
    assert h.session.difficulty == 1000


def test_after_a_raising_suggestion_weak_shares_of_the_resent_job_are_23() -> None:
    h = Harness()
    h.esp_miner_handshake()
    weak = h.share("j1", low=EASY, high=2 * EASY)
    h.call("mining.suggest_difficulty", [1000])
    assert error_code(h.submit(weak)[0]) == 23


def test_suggest_difficulty_before_authorize_is_used_for_the_first_job() -> None:
    h = Harness()
    h.call("mining.subscribe", [])
    _, actions = h.call("mining.suggest_difficulty", [512])
    assert methods(actions) == []
    _, actions = h.call("mining.authorize", [ADDRESS, "x"])
    assert lines(actions)[1]["params"] == [512]


def test_tiny_suggestions_are_honoured_down_to_the_minimum() -> None:
    h = Harness(minimum_difficulty=1e-6, initial_difficulty=1e-6)
    h.call("mining.suggest_difficulty", [0.00015])
    assert h.session.difficulty == 0.00015
    h.call("mining.suggest_difficulty", [1e-12])
    assert h.session.difficulty == 1e-6


def test_suggest_difficulty_rejects_non_numbers() -> None:
    h = Harness()
    for bad in (["abc"], [True], [], [-5], [None]):
        answer, _ = h.call("mining.suggest_difficulty", bad)
        assert error_code(answer) == 20


def test_suggest_target_converts_to_difficulty() -> None:
    h = Harness()
    target = COIN.diff1_target // 64
    answer, _ = h.call("mining.suggest_target", [f"{target:064x}"])
    assert answer["result"] is True
    assert h.session.difficulty == pytest.approx(64)


def test_floor_policy_keeps_vardiff_at_or_above_the_suggestion() -> None:
    h = Harness(suggestion_policy="floor")
    h.call("mining.suggest_difficulty", [8])
    assert h.session.vardiff.floor == 8
    h.session.vardiff.restart(1, NOW)
    assert h.session.difficulty == 8


def test_fixed_policy_disables_vardiff() -> None:
    h = Harness(suggestion_policy="fixed")
    h.call("mining.suggest_difficulty", [8])
    assert not h.session.vardiff.enabled and h.session.difficulty == 8


def test_configure_minimum_difficulty_is_a_floor() -> None:
    h = Harness()
    h.call("mining.configure", [["minimum-difficulty"], {"minimum-difficulty.value": 64}])
    h.call("mining.suggest_difficulty", [4])
    assert h.session.difficulty == 64


# ----- vardiff and the difficulty a share is judged by


def fast_vardiff() -> VardiffConfig:
    return VardiffConfig(target_interval=15, retarget_interval=90, window=20, max_step=4)


def test_vardiff_lowering_then_raising_never_rejects_work_done_at_the_given_difficulty() -> None:
    """A Bitaxe applies set_difficulty only to jobs notified after it and keeps submitting older ones."""
    h = Harness(initial_difficulty=4 * EASY, vardiff=fast_vardiff())
    h.esp_miner_handshake()
    assert h.jobs["j1"].difficulty == 4 * EASY
    rejected: list[ShareRejected] = []

    def submit(job_id: str, low: float, high: float) -> dict[str, Any]:
        answer, actions = h.submit(h.share(job_id, low=low, high=high))
        rejected.extend(of_type(actions, ShareRejected))
        return answer

    # silence: vardiff lowers and sends it at once with the current job (now j2)
    h.work.add(make_job("j2", target=NO_BLOCK))
    h.clock.t += 200
    actions = h.session.tick()
    h.observe(actions)
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    assert h.session.difficulty == EASY and h.jobs["j2"].difficulty == EASY
    # shares of the older job j1 are judged by the lower difficulty at once
    assert submit("j1", EASY, 2 * EASY)["result"] is True

    # a flood of shares on j2: vardiff raises, but only the next job carries it
    for _ in range(19):
        h.clock.t += 0.1
        assert submit("j2", EASY, 2 * EASY)["result"] is True
    assert h.session.difficulty == 4 * EASY
    assert h.session.sent_difficulty == EASY
    # still working on j2 at the difficulty it was given
    assert submit("j2", EASY, 2 * EASY)["result"] is True

    actions = h.push(make_job("j3", target=NO_BLOCK))
    assert methods(actions) == ["mining.set_difficulty", "mining.notify"]
    assert h.jobs["j3"].difficulty == 4 * EASY
    # older jobs keep their easier difficulty; the new job needs the new one
    assert submit("j2", EASY, 2 * EASY)["result"] is True
    assert submit("j1", 4 * EASY, 8 * EASY)["result"] is True  # j1 was given 4x: still 4x
    assert submit("j3", 4 * EASY, 8 * EASY)["result"] is True
    assert rejected == []
    assert error_code(submit("j3", EASY, 2 * EASY)) == 23


def test_accepted_share_reports_the_difficulty_it_was_judged_by() -> None:
    h = Harness(initial_difficulty=4 * EASY)
    h.esp_miner_handshake()
    h.session.vardiff.restart(EASY, NOW)
    _, actions = h.submit(h.share("j1", low=EASY, high=2 * EASY))
    assert of_type(actions, ShareAccepted)[0].difficulty == EASY


def test_best_share_is_tracked_per_session_and_worker() -> None:
    h = Harness()
    h.esp_miner_handshake()
    _, actions = h.submit(h.share("j1"))
    achieved = of_type(actions, ShareAccepted)[0].achieved
    assert h.session.best_difficulty == achieved
    assert h.session.best_by_worker == {f"{ADDRESS}.bitaxe": achieved}


def test_tick_does_nothing_before_work() -> None:
    h = Harness()
    h.clock.t += 10_000
    assert h.session.tick() == []


# ----- other messages


def test_extranonce_subscribe_and_ping_answer_true() -> None:
    h = Harness()
    assert h.call("mining.extranonce.subscribe", [])[0]["result"] is True
    assert h.session.extranonce_subscribed
    assert h.call("mining.ping", [])[0]["result"] == "pong"


def test_subscribe_accepts_a_resume_session_id() -> None:
    h = Harness()
    answer, _ = h.call("mining.subscribe", ["bitaxe", "deadbeef"])
    assert answer["result"][0][0][1] == "s1"
    assert h.session.requested_session_id == "deadbeef"


@pytest.mark.parametrize(
    "build,expected",
    [
        (lambda: msg.set_version_mask(0x1FFFE000),
         {"method": "mining.set_version_mask", "params": ["1fffe000"]}),
        (lambda: msg.set_extranonce(b"\x01\x02", 4),
         {"method": "mining.set_extranonce", "params": ["0102", 4]}),
        (lambda: msg.client_reconnect("pool", 3333, 5),
         {"method": "client.reconnect", "params": ["pool", 3333, 5]}),
        (lambda: msg.client_show_message("hi"), {"method": "client.show_message", "params": ["hi"]}),
        (lambda: msg.set_difficulty(0.25), {"method": "mining.set_difficulty", "params": [0.25]}),
    ],
)
def test_server_pushed_messages(build: Callable[[], bytes], expected: dict[str, Any]) -> None:
    line = build()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"id": None, **expected}


def test_notify_params_match_the_stratum_layout() -> None:
    job = make_job("abc", branch=b"\x01" * 32 + b"\x02" * 32)
    params = orjson.loads(msg.notify(job, True))["params"]
    assert params[0] == "abc"
    assert bytes.fromhex(params[1])[:4] == job.template.prevhash[:4][::-1]
    assert params[4] == ["01" * 32, "02" * 32]
    assert params[5:] == ["20000000", "207fffff", f"{job.template.curtime:08x}", True]
