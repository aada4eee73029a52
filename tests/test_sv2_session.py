"""The Stratum V2 mining protocol through Sv2Session, plaintext frames in and out: the project's SV2 client
(tests/sv2_client.py) hashes real shares from what the session sends; no sockets, a hand-driven clock."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mainnet import MAINNET_HEIGHTS, mainnet_case
from miner import FakeWork, make_job
from sv2_client import ESP_MINER_VERSION_MASK, Sv2Client, sha256d

from stratum_pool.chain.address import address_to_script
from stratum_pool.coins import get_coin
from stratum_pool.jobs.builder import assemble_block
from stratum_pool.jobs.job import Job
from stratum_pool.jobs.manager import JobManager
from stratum_pool.protocol.actions import Action, Authorized, BlockCandidate, Close, Send, ShareAccepted, ShareRejected
from stratum_pool.protocol.session import SessionConfig
from stratum_pool.protocol.v2 import messages as m
from stratum_pool.protocol.v2.codec import U256_MAX
from stratum_pool.protocol.v2.session import MAX_CHANNEL_JOBS, MAX_FRAME_SIZE, SETUP_TIMEOUT_SECONDS, Sv2Session
from stratum_pool.shares.vardiff import VardiffConfig

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qgoodaddress"
USER = f"{ADDRESS}.rig"
NOW = 1_700_000_100.0
EASY = 2e-7  # about a thousand hashes per share
NO_BLOCK = 2**200  # a network target no test share reaches
PREV_A, PREV_B = bytes(range(32)), bytes(range(1, 33))
BOTH = pytest.mark.parametrize("extended", [True, False], ids=["extended", "standard"])


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q") and "bad" not in address:
        return b"\x00\x14" + bytes(20)
    raise ValueError("checksum mismatch")


def sent(actions: list[Action]) -> list[m.Message]:
    return [m.decode_frame(a.data) for a in actions if isinstance(a, Send)]  # each Send is one whole frame


def records(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


class Harness:
    """A session, its work and one or more clients; frames the session sends go to the client they are for."""

    def __init__(self, work: FakeWork | None = None, extended: bool = True, **options: Any) -> None:
        coin = options.pop("coin", COIN)
        config = {k: options.pop(k) for k in list(options) if k in SessionConfig.__dataclass_fields__}
        config.setdefault("initial_difficulty", EASY)
        self.config = SessionConfig(coin, **config)
        self.work = work if work is not None else FakeWork()
        if self.work.current is None:
            self.work.add(make_job("00000001", coin=coin, prevhash=PREV_A, target=NO_BLOCK))
        self.now = NOW
        counter = itertools.count(0x2A)
        self.released: list[bytes] = []
        self.session = Sv2Session(self.config, self.work, options.pop("check", check_address), "s1",
                                  lambda: next(counter).to_bytes(4, "big"), self.released.append, self.now,
                                  **options)
        self.client = Sv2Client(coin, USER, extended=extended)

    def feed(self, frame: bytes, client: Sv2Client | None = None) -> list[Action]:
        return self.deliver(self.session.feed_frame(frame, self.now), client)

    def deliver(self, actions: list[Action], client: Sv2Client | None = None) -> list[Action]:
        client = client or self.client
        for message in sent(actions):
            target = client
            channel_id = getattr(message, "channel_id", None)
            if message.CHANNEL_MSG and channel_id != client.channel_id:
                target = self.clients.get(channel_id, client)
            target.receive(message.encode())
        return actions

    @property
    def clients(self) -> dict[int | None, Sv2Client]:
        return getattr(self, "_clients", {})

    def start(self, client: Sv2Client | None = None) -> list[Action]:
        client = client or self.client
        if self.session.setup is None:
            self.feed(client.setup_frame(), client)
        actions = self.feed(client.open_frame(), client)
        if client.channel_id is not None:
            self._clients = {**self.clients, client.channel_id: client}
        return actions

    def push(self, job: Job) -> list[Action]:
        self.work.add(job)
        return self.deliver(self.session.push_job(self.now))

    def submit(self, client: Sv2Client | None = None, **find: Any) -> list[Action]:
        client = client or self.client
        self.now += 0.5
        return self.feed(client.submit(client.find_share(**find)), client)


# ----- channels, jobs and shares


@BOTH
def test_a_channel_opens_with_its_job_and_prevhash_and_mines(extended: bool) -> None:
    h = Harness(extended=extended)
    actions = h.feed(h.client.setup_frame())
    assert sent(actions) == [m.SetupConnectionSuccess(2, 0)]
    actions = h.start()
    kinds = [type(x) for x in sent(actions)]
    opened = m.OpenExtendedMiningChannelSuccess if extended else m.OpenStandardMiningChannelSuccess
    job_kind = m.NewExtendedMiningJob if extended else m.NewMiningJob
    assert kinds == [opened, job_kind, m.SetNewPrevHash]  # the job first, as a future job, then its prevhash
    assert sent(actions)[1].min_ntime is None  # type: ignore[attr-defined]
    assert records(actions, Authorized) == [Authorized("s1", USER, ADDRESS)]
    client = h.client
    assert client.target == h.session.rules.target_for(EASY)
    if extended:
        assert (client.extranonce_prefix, client.extranonce_size) == (bytes.fromhex("0000002a"), 4)
    else:
        assert client.extranonce_prefix == bytes.fromhex("0000002a") + bytes(4)  # the whole extranonce
    job = h.work.current
    assert job is not None and client.job is not None
    assert (client.job.job_id, client.job.prev_hash, client.job.ntime) == (1, PREV_A, job.template.curtime)

    actions = h.submit()
    assert sent(actions) == [m.SubmitSharesSuccess(client.channel_id, 1, 1, 0)]  # type: ignore[arg-type]
    [accepted] = records(actions, ShareAccepted)
    assert (accepted.worker, accepted.address, accepted.job_id, accepted.block) == (USER, ADDRESS, "00000001", False)
    assert client.accepted == 1 and not client.errors


@BOTH
def test_scrypt_shares_on_litecoin(extended: bool) -> None:
    # a Litecoin share of difficulty d takes d * 65,536 hashes: about 500 here
    h = Harness(extended=extended, coin=get_coin("litecoin", "regtest"), initial_difficulty=0.008)
    h.start()
    [accepted] = records(h.submit(), ShareAccepted)
    assert accepted.achieved >= 0.008


def test_a_standard_job_carries_the_channel_s_own_merkle_root() -> None:
    h = Harness(extended=False)
    h.start()
    job = h.work.current
    assert job is not None and h.client.job is not None
    assert h.client.job.merkle_root == sha256d(job.coinb1 + h.client.extranonce_prefix + job.coinb2)


@BOTH
def test_a_duplicate_share_is_refused(extended: bool) -> None:
    h = Harness(extended=extended)
    h.start()
    share = h.client.find_share()
    assert records(h.feed(h.client.submit(share)), ShareAccepted)
    actions = h.feed(h.client.submit(share))
    assert sent(actions) == [m.SubmitSharesError(1, 2, "duplicate-share")]
    assert records(actions, ShareRejected)[0].reason == "duplicate"


@BOTH
def test_a_share_over_the_target_is_too_low(extended: bool) -> None:
    h = Harness(extended=extended)
    h.start()
    job = h.client.job
    assert job is not None
    actions = h.submit(target=U256_MAX, above=job.target)
    assert sent(actions) == [m.SubmitSharesError(1, 1, "difficulty-too-low")]
    assert records(actions, ShareRejected)[0].reason == "low-difficulty"


@BOTH
def test_a_new_block_sends_a_future_job_then_its_prevhash_and_old_shares_are_stale(extended: bool) -> None:
    h = Harness(extended=extended)
    h.start()
    old = h.client.job
    assert old is not None
    actions = h.push(make_job("00000002", prevhash=PREV_B, target=NO_BLOCK))
    messages = sent(actions)
    assert [type(x) for x in messages] == [m.NewExtendedMiningJob if extended else m.NewMiningJob, m.SetNewPrevHash]
    assert messages[0].min_ntime is None  # type: ignore[attr-defined]
    assert messages[1] == m.SetNewPrevHash(1, 2, PREV_B, messages[1].min_ntime, 0x207FFFFF)  # type: ignore[attr-defined]
    assert h.client.job is not None and h.client.job.job_id == 2 and h.client.job.prev_hash == PREV_B

    actions = h.submit(job=old)  # work in flight on the old tip arrives after the new prevhash
    assert sent(actions) == [m.SubmitSharesError(1, 1, "stale-share")]
    assert records(actions, ShareRejected)[0].reason == "stale"
    assert records(h.submit(), ShareAccepted)
    assert h.session.push_job(h.now) == []  # the same job is not sent twice


@BOTH
def test_a_refreshed_job_on_the_same_block_is_mined_at_once(extended: bool) -> None:
    h = Harness(extended=extended)
    h.start()
    old = h.client.job
    refreshed = make_job("00000002", prevhash=PREV_A, target=NO_BLOCK, curtime=1_700_000_030)
    messages = sent(h.push(refreshed))
    assert len(messages) == 1 and messages[0].min_ntime == 1_700_000_030  # type: ignore[attr-defined]
    assert h.client.job is not None and h.client.job.job_id == 2 and h.client.job.ntime == 1_700_000_030
    assert records(h.submit(job=old), ShareAccepted)  # the older job on the same block still counts
    assert records(h.submit(), ShareAccepted)


@BOTH
def test_vardiff_raises_with_set_target_and_each_job_keeps_the_target_it_was_sent_with(extended: bool) -> None:
    vardiff = VardiffConfig(target_interval=15.0, retarget_interval=1000.0, window=3)
    h = Harness(extended=extended, vardiff=vardiff)
    h.start()
    old_target = h.client.target
    raised: list[m.Message] = []
    for _ in range(3):
        raised += [x for x in sent(h.submit()) if isinstance(x, m.SetTarget)]
    assert len(raised) == 1
    new_target = h.client.target
    assert new_target < old_target
    assert new_target == h.session.rules.target_for(h.session.channels[1].core.vardiff.difficulty)

    # the job the miner holds was sent before the SetTarget: a share under its target still counts
    actions = h.submit(target=old_target, above=new_target)
    assert records(actions, ShareAccepted)
    # the next job carries the new target
    h.push(make_job("00000002", prevhash=PREV_A, target=NO_BLOCK))
    assert h.client.job is not None and h.client.job.target == new_target
    actions = h.submit(target=old_target, above=new_target)
    assert sent(actions)[-1] == m.SubmitSharesError(1, 5, "difficulty-too-low")


def test_tick_lowers_the_target_of_a_silent_channel_and_flushes_batched_acks() -> None:
    h = Harness(ack_batch=3)
    h.start()
    before = h.client.target
    h.submit()
    h.submit()
    assert h.client.accepted == 0  # batched
    actions = h.submit()
    assert sent(actions) == [m.SubmitSharesSuccess(1, 3, 3, 0)]
    h.submit()
    h.now += 3600
    messages = sent(h.deliver(h.session.tick(h.now)))
    assert messages[0] == m.SubmitSharesSuccess(1, 4, 1, 0)
    assert isinstance(messages[1], m.SetTarget) and messages[1].maximum_target > before
    assert h.client.accepted == 4


@BOTH
def test_a_share_under_the_network_target_is_a_block_candidate(extended: bool) -> None:
    work = FakeWork()
    work.add(make_job("00000001", prevhash=PREV_A, target=U256_MAX))
    h = Harness(work, extended=extended)
    h.start()
    actions = h.submit()
    candidate = actions[0]
    assert isinstance(candidate, BlockCandidate)  # first: the pool submits it before anything else
    assert candidate.address == ADDRESS and candidate.worker == USER
    assert candidate.extranonce1 == bytes.fromhex("0000002a")
    assert candidate.extranonce2 == (bytes.fromhex("00000001") if extended else bytes(4))
    assert records(actions, ShareAccepted)[0].block


@BOTH
def test_job_ids_of_any_length_map_to_u32s_per_channel_and_old_ones_are_forgotten(extended: bool) -> None:
    work = FakeWork()
    work.add(make_job("031000000", prevhash=PREV_A, target=NO_BLOCK))  # JobManager's ids after 16.7M jobs
    h = Harness(work, extended=extended)
    h.start()
    assert h.client.job is not None and h.client.job.job_id == 1
    [accepted] = records(h.submit(), ShareAccepted)
    assert accepted.job_id == "031000000"
    first = h.client.job
    for n in range(MAX_CHANNEL_JOBS):
        h.push(make_job(f"job-{n}", prevhash=PREV_A, target=NO_BLOCK))
    assert h.client.job.job_id == MAX_CHANNEL_JOBS + 1
    assert len(h.session.channels[1].job_ids) == MAX_CHANNEL_JOBS
    actions = h.submit(job=first)  # the first job's SV2 id is no longer known
    assert sent(actions)[-1] == m.SubmitSharesError(1, 2, "invalid-job-id")
    assert records(h.submit(), ShareAccepted)


def test_two_channels_on_one_connection_get_their_own_extranonce_and_close_alone() -> None:
    h = Harness()
    standard = Sv2Client(COIN, f"{ADDRESS}.second", extended=False)
    h.start()
    h.start(standard)
    assert standard.channel_id == 2 and standard.extranonce_prefix[:4] == bytes.fromhex("0000002b")
    assert records(h.submit(), ShareAccepted) and records(h.submit(standard), ShareAccepted)
    assert set(h.session.workers) == {USER, f"{ADDRESS}.second"}
    assert h.feed(m.CloseChannel(1, "bye").encode()) == []
    assert h.released == [bytes.fromhex("0000002a")]
    assert sent(h.submit()) == [m.SubmitSharesError(1, 2, "invalid-channel-id")]
    assert records(h.submit(standard), ShareAccepted)
    h.session.release()
    assert h.released == [bytes.fromhex("0000002a"), bytes.fromhex("0000002b")]


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_a_real_mainnet_block_through_an_extended_channel(height: int) -> None:
    """The block's own extranonce, ntime, nonce and version submitted on an extended channel: the client
    rebuilds the block's header from NewExtendedMiningJob alone, and the pool finds the block."""
    case = mainnet_case(height)
    btc = case.coin
    job = dataclasses.replace(case.job, job_id=f"{height:08x}", notify_prefix=())
    work = FakeWork()
    work.add(job)
    session = Sv2Session(SessionConfig(btc, extranonce2_size=len(case.extranonce2), initial_difficulty=1.0), work,
                         lambda a: address_to_script(a, btc), "s1", lambda: case.extranonce1, lambda _: None,
                         float(case.ntime))
    client = Sv2Client(btc, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa.rig")
    for frame in (client.setup_frame(), client.open_frame()):
        for action in session.feed_frame(frame, float(case.ntime)):
            if isinstance(action, Send):
                client.receive(action.data)
    seen = client.job
    assert seen is not None and len(seen.merkle_path) == len(job.template.merkle_branch)
    header = (case.version.to_bytes(4, "little") + seen.prev_hash + client.merkle_root(seen, case.extranonce2)
              + case.ntime.to_bytes(4, "little") + seen.nbits.to_bytes(4, "little") + case.nonce.to_bytes(4, "little"))
    assert header == case.header
    submit = m.SubmitSharesExtended(1, 1, seen.job_id, case.nonce, case.ntime, case.version, case.extranonce2)
    actions = session.feed_frame(submit.encode(), float(case.ntime))
    candidate = actions[0]
    assert isinstance(candidate, BlockCandidate)
    assert candidate.block_hash[::-1].hex() == case.expected_hash_display
    block = assemble_block(candidate.job, candidate.extranonce1, candidate.extranonce2, candidate.header)
    assert block == case.raw_block


@BOTH
def test_jobs_from_a_real_job_manager_with_transactions_are_mined(extended: bool) -> None:
    """A JobManager in solo mode over a real mainnet template (transactions, so a real merkle path): the
    channel's jobs pay the channel's address and shares hashed from the SV2 messages alone are accepted."""
    from mainnet import gbt_from_block, read_block

    from stratum_pool.chain.block import parse_block

    btc = get_coin("bitcoin", "mainnet")
    address = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    manager = JobManager(btc, extranonce_size=8, pool_tag=b"/sv2/",
                         address_to_script=lambda a: address_to_script(a, btc), solo=True, clock=lambda: 100.0)
    gbt = gbt_from_block(parse_block(read_block(277647)), 277647, 2)
    manager.update(gbt)
    now = float(gbt["curtime"])
    en1 = itertools.count(7)
    session = Sv2Session(SessionConfig(btc, initial_difficulty=EASY), manager, lambda a: address_to_script(a, btc),
                         "s1", lambda: next(en1).to_bytes(4, "big"), lambda _: None, now)
    client = Sv2Client(btc, f"{address}.rig", extended=extended)

    def feed(frame: bytes) -> list[Action]:
        actions = session.feed_frame(frame, now)
        for action in actions:
            if isinstance(action, Send):
                client.receive(action.data)
        return actions

    feed(client.setup_frame())
    feed(client.open_frame())
    job = manager.current_job(address)
    assert job is not None and job.payout_key == address and len(job.template.merkle_branch) > 1
    assert client.job is not None and session.channels[1].job_ids[client.job.job_id] == job.job_id
    for _ in range(2):
        actions = feed(client.submit(client.find_share()))
        assert [r.job_id for r in records(actions, ShareAccepted)] == [job.job_id]
    # a new block on the manager reaches the channel as a future job and its prevhash
    gbt2 = dict(gbt, previousblockhash="11" * 32)
    assert manager.update(gbt2)
    for action in session.push_job(now):
        assert isinstance(action, Send)
        client.receive(action.data)
    assert client.job.prev_hash == bytes.fromhex("11" * 32)
    assert records(feed(client.submit(client.find_share())), ShareAccepted)


# ----- refusals and bad input


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (m.SetupConnection(1, 2, 2, 0, "", 0, "", "", "", ""), m.SetupConnectionError(0, "unsupported-protocol")),
        (m.SetupConnection(0, 3, 4, 0, "", 0, "", "", "", ""), m.SetupConnectionError(0, "protocol-version-mismatch")),
        (m.SetupConnection(0, 2, 2, 0b1011, "", 0, "", "", "", ""),
         m.SetupConnectionError(0b1010, "unsupported-feature-flags")),
    ],
)
def test_setup_connection_errors_then_close(setup: m.SetupConnection, error: m.Message) -> None:
    h = Harness()
    actions = h.feed(setup.encode())
    assert sent(actions) == [error]
    assert isinstance(actions[-1], Close) and h.session.closed
    assert h.feed(h.client.open_frame()) == []  # nothing after the close


def test_version_rolling_and_standard_jobs_flags_are_served() -> None:
    h = Harness()
    assert h.session.user_agent == ""
    flags = m.REQUIRES_STANDARD_JOBS | m.REQUIRES_VERSION_ROLLING
    assert sent(h.feed(h.client.setup_frame(flags))) == [m.SetupConnectionSuccess(2, 0)]
    assert h.session.user_agent == "stratum-pool-tests sv2-client 0.1"


def test_anything_before_setup_connection_closes() -> None:
    h = Harness()
    actions = h.feed(h.client.open_frame())
    assert actions == [Close("OpenExtendedMiningChannel before SetupConnection")]
    assert h.session.malformed == 1


@pytest.mark.parametrize(
    ("user", "extended", "max_target", "min_extranonce", "code"),
    [
        ("bcrt1qbad.rig", True, U256_MAX, 2, "unknown-user"),
        (f"{ADDRESS}.no spaces", True, U256_MAX, 2, "unknown-user"),
        ("", False, U256_MAX, 2, "unknown-user"),
        (USER, True, 0, 2, "max-target-out-of-range"),
        (USER, False, 1, 2, "max-target-out-of-range"),  # would need a difficulty over the maximum
        (USER, True, U256_MAX, 5, "min-extranonce-size-too-large"),
    ],
)
def test_open_channel_refusals(user: str, extended: bool, max_target: int, min_extranonce: int, code: str) -> None:
    h = Harness(extended=extended)
    client = Sv2Client(COIN, user, extended=extended, max_target=max_target, min_extranonce_size=min_extranonce)
    h.feed(client.setup_frame(), client)
    actions = h.feed(client.open_frame(request_id=9), client)
    assert actions == [Send(m.OpenMiningChannelError(9, code).encode())]
    assert h.released == [] and not h.session.channels


def test_a_max_target_floors_the_difficulty() -> None:
    h = Harness()
    h.client.max_target = h.session.rules.target_for(EASY * 10)
    h.start()
    assert h.client.target <= h.client.max_target
    assert h.session.channels[1].core.vardiff.difficulty == pytest.approx(EASY * 10)


def test_update_channel_follows_a_smaller_maximum_target() -> None:
    h = Harness()
    h.start()
    smaller = h.client.target // 16
    messages = sent(h.feed(m.UpdateChannel(1, 1e9, smaller).encode()))
    assert len(messages) == 1 and isinstance(messages[0], m.SetTarget) and messages[0].maximum_target <= smaller
    assert sent(h.feed(m.UpdateChannel(5, 1e9, smaller).encode())) == [m.UpdateChannelError(5, "invalid-channel-id")]
    assert sent(h.feed(m.UpdateChannel(1, 1e9, 0).encode())) == [m.UpdateChannelError(1, "max-target-out-of-range")]


def test_too_many_channels_are_refused() -> None:
    h = Harness(max_channels=2)
    h.start()
    for request_id in (2, 3):
        actions = h.feed(h.client.open_frame(request_id))
    assert sent(actions) == [m.OpenMiningChannelError(3, "too-many-channels")]
    assert len(h.session.channels) == 2


def test_submits_on_a_channel_not_open_or_of_the_other_kind_are_refused() -> None:
    h = Harness(extended=False)
    h.start()
    stray = m.SubmitSharesStandard(77, 5, 1, 0, 0, 0x20000000).encode()
    assert sent(h.feed(stray)) == [m.SubmitSharesError(77, 5, "invalid-channel-id")]
    extended = m.SubmitSharesExtended(1, 6, 1, 0, 0, 0x20000000, bytes(4)).encode()
    assert sent(h.feed(extended)) == [m.SubmitSharesError(1, 6, "invalid-channel-id")]
    assert h.session.malformed == 2


def test_a_reloaded_rate_limits_open_channels_and_closing_keeps_the_malformed_count() -> None:
    h = Harness()
    h.start()
    h.session.config = dataclasses.replace(h.config, submits_per_second=0.001, submit_burst=1)
    assert records(h.submit(), ShareAccepted)
    actions = h.submit()
    assert sent(actions) == [m.SubmitSharesError(1, 2, "rate-limited")]
    assert h.session.malformed == 1
    h.feed(m.CloseChannel(1, "").encode())
    assert h.session.malformed == 1


def test_bad_share_fields_get_their_error_codes() -> None:
    h = Harness()
    h.start()
    share = h.client.find_share()
    bad_version = m.SubmitSharesExtended(1, 1, share.job_id, share.nonce, share.ntime, share.version ^ 0x1,
                                         share.extranonce)
    assert sent(h.feed(bad_version.encode())) == [m.SubmitSharesError(1, 1, "invalid-version")]
    short = m.SubmitSharesExtended(1, 2, share.job_id, share.nonce, share.ntime, share.version, b"\x01")
    assert sent(h.feed(short.encode())) == [m.SubmitSharesError(1, 2, "invalid-extranonce-size")]
    unknown = m.SubmitSharesExtended(1, 3, 0xFFFF, share.nonce, share.ntime, share.version, share.extranonce)
    assert sent(h.feed(unknown.encode())) == [m.SubmitSharesError(1, 3, "invalid-job-id")]
    future = m.SubmitSharesExtended(1, 4, share.job_id, share.nonce, share.ntime + 3 * 3600, share.version,
                                    share.extranonce)
    assert sent(h.feed(future.encode())) == [m.SubmitSharesError(1, 4, "invalid-timestamp")]
    assert records(h.feed(h.client.submit(share, 5)), ShareAccepted)  # the good share itself still counts


def test_the_version_mask_is_the_coin_s_as_esp_miner_rolls() -> None:
    h = Harness()
    h.start()
    assert h.session.channels[1].core.version_mask & ESP_MINER_VERSION_MASK == ESP_MINER_VERSION_MASK
    assert records(h.submit(version_bits=0xFFFF), ShareAccepted)  # every bit under 0x1fffe000 rolled


def test_malformed_unknown_oversized_and_server_frames() -> None:
    h = Harness()
    h.start()
    assert h.feed(bytes.fromhex("00801e000000")) == []  # an unknown mining message: ignored, counted
    assert h.session.malformed == 1
    assert h.feed(bytes.fromhex("014099000000")) == []  # an unknown extension's: discarded
    assert h.session.malformed == 1
    assert not h.session.closed
    assert h.feed(m.SetTarget(1, 5).encode()) == [Close("SetTarget is a server's message")]

    h = Harness()
    h.start()
    truncated = m.SubmitSharesStandard(1, 1, 1, 0, 0, 0).encode()
    truncated = truncated[:3] + (24 - 1).to_bytes(3, "little") + truncated[6:-1]
    [close] = h.feed(truncated)
    assert isinstance(close, Close) and close.reason.startswith("malformed SubmitSharesStandard")

    h = Harness()
    h.start()
    [close] = h.feed(bytes.fromhex("000000") + (MAX_FRAME_SIZE).to_bytes(3, "little") + bytes(MAX_FRAME_SIZE))
    assert isinstance(close, Close) and "over" in close.reason

    h = Harness()
    h.start()
    assert isinstance(h.feed(h.client.setup_frame())[0], Close)  # SetupConnection twice


def test_a_connection_without_a_channel_is_closed_after_the_setup_timeout() -> None:
    h = Harness()
    h.feed(h.client.setup_frame())
    assert h.session.tick(NOW + SETUP_TIMEOUT_SECONDS - 1) == []
    [close] = h.session.tick(NOW + SETUP_TIMEOUT_SECONDS + 1)
    assert isinstance(close, Close)


def test_reconnect_is_one_frame() -> None:
    h = Harness()
    assert sent(h.session.reconnect("10.0.0.1", 3336)) == [m.Reconnect("10.0.0.1", 3336)]


# ----- anything at all


def _mutations() -> st.SearchStrategy[bytes]:
    client = Sv2Client(COIN, USER)
    client.channel_id = 1
    valid = [
        client.setup_frame(), client.open_frame(), Sv2Client(COIN, USER, extended=False).open_frame(),
        m.SubmitSharesStandard(1, 1, 1, 0, 0, 0x20000000).encode(),
        m.SubmitSharesExtended(1, 1, 1, 0, 0, 0x20000000, bytes(4)).encode(),
        m.UpdateChannel(1, 1e9, 2**200).encode(), m.CloseChannel(1, "x").encode(), m.SetTarget(1, 1).encode(),
    ]
    base = st.sampled_from(valid)
    flipped = st.tuples(base, st.integers(0, 200), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :] if t[1] < len(t[0]) else t[0]
    )
    cut = st.tuples(base, st.integers(0, 200)).map(lambda t: t[0][: t[1]])
    return st.one_of(base, flipped, cut, st.binary(max_size=64))


@settings(max_examples=300, deadline=None)
@given(st.lists(_mutations(), max_size=12))
def test_any_frames_give_actions_never_an_exception(frames: list[bytes]) -> None:
    h = Harness(max_channels=3)
    for frame in frames:
        actions = h.session.feed_frame(frame, h.now)
        for message in sent(actions):  # every Send decodes as one whole frame
            assert message.MSG_TYPE in m.MESSAGES
        assert all(isinstance(a, Send | Close | Authorized | ShareAccepted | ShareRejected | BlockCandidate)
                   for a in actions)
        assert len(h.session.channels) <= 3
    h.session.tick(h.now + 3600)
    h.session.push_job(h.now)
    h.session.release()
    assert not h.session.channels
