"""Block submission (``blocks.BlockSubmitter``): candidate -> block -> every daemon -> best-chain check -> record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from miner import make_job

from stratum_pool.blocks import BlockSubmitter, FoundBlock
from stratum_pool.config import CoinSettings, DaemonSettings, VardiffSettings
from stratum_pool.daemon.rpc import DaemonError, EndpointSubmit, SubmitResult
from stratum_pool.jobs.builder import assemble_block
from stratum_pool.jobs.job import Job
from stratum_pool.metrics import PoolMetrics
from stratum_pool.protocol.actions import BlockCandidate, ShareAccepted
from stratum_pool.store.recorder import ShareRecorder
from stratum_pool.store.spool import BlockRecord, ShareSpool

JOB = make_job("j1")
COIN = JOB.template.coin
HEADER = bytes(range(80))
BLOCK_HASH = bytes(range(32, 64))  # internal order
DISPLAY = BLOCK_HASH[::-1].hex()
T0 = 1_700_000_000.0


def settings(mode: str = "pplns") -> CoinSettings:
    return CoinSettings(coin=COIN, mode=mode, stratum_host="127.0.0.1", stratum_port=0,
                        daemons=(DaemonSettings("d", "http://127.0.0.1:1", "u", "p", "", 5.0),),
                        vardiff=VardiffSettings(), pool_address="pool", fee_percent=1.0, fee_address="fee")


def candidate(job: Job = JOB) -> BlockCandidate:
    return BlockCandidate(job, HEADER, b"\x00\x00\x00\x01", b"\x00" * 4, BLOCK_HASH, BLOCK_HASH, "addr1.rig",
                          "addr1", 1e6, T0)


class FakeDaemon:
    def __init__(self, reasons: tuple[str, ...] = ("accepted",), best: str = DISPLAY,
                 main_chain: bool = False) -> None:
        self.reasons, self.best, self.main_chain = reasons, best, main_chain
        self.submitted: list[str] = []
        self.fail_submit = self.fail_check = False

    async def submitblock(self, block_hex: str) -> SubmitResult:
        if self.fail_submit:
            raise DaemonError("connection refused")
        self.submitted.append(block_hex)
        return SubmitResult(tuple(EndpointSubmit(f"d{i}", r) for i, r in enumerate(self.reasons)))

    async def getbestblockhash(self) -> str:
        if self.fail_check:
            raise DaemonError("timeout")
        return self.best

    async def is_in_main_chain(self, height: int, block_hash_display: str) -> bool:
        return self.main_chain


def submitter(daemon: FakeDaemon, *, recorder: ShareRecorder | None = None,
              on_accepted: Callable[[], Awaitable[None]] | None = None) -> tuple[BlockSubmitter, PoolMetrics]:
    metrics = PoolMetrics(clock=lambda: T0)
    return BlockSubmitter(settings(), daemon, lambda job: 4_000_000_000, metrics=metrics, recorder=recorder,
                          clock=lambda: T0 + 1, on_accepted=on_accepted), metrics


def blocks_counted(metrics: PoolMetrics, result: str) -> float | None:
    return metrics.registry.get_sample_value("stratum_pool_blocks_found_total",
                                             {"coin": COIN.key, "result": result})


async def test_an_accepted_block_is_submitted_checked_and_found() -> None:
    daemon = FakeDaemon(("rejected", "accepted"))
    news: list[str] = []

    async def on_accepted() -> None:
        news.append("new block")

    blocks, metrics = submitter(daemon, on_accepted=on_accepted)
    found = await blocks.submit(candidate())
    assert daemon.submitted == [assemble_block(JOB, b"\x00\x00\x00\x01", b"\x00" * 4, HEADER).hex()]
    assert found == FoundBlock(101, DISPLAY, "addr1.rig", "addr1", True, "accepted", True, T0 + 1)
    assert blocks.found == [found] and news == ["new block"]
    assert blocks_counted(metrics, "accepted") == 1


async def test_a_block_behind_another_best_block_is_checked_by_height() -> None:
    blocks, _ = submitter(FakeDaemon(best="00" * 32, main_chain=True))
    assert (await blocks.submit(candidate())).in_best_chain
    blocks, _ = submitter(FakeDaemon(best="00" * 32, main_chain=False))
    assert not (await blocks.submit(candidate())).in_best_chain


async def test_a_failed_check_leaves_the_block_accepted_but_not_in_the_best_chain() -> None:
    daemon = FakeDaemon()
    daemon.fail_check = True
    blocks, _ = submitter(daemon)
    found = await blocks.submit(candidate())
    assert (found.accepted, found.in_best_chain) == (True, False)


async def test_rejected_and_failed_submissions_are_recorded_as_rejected() -> None:
    news: list[str] = []

    async def on_accepted() -> None:
        news.append("new block")

    daemon = FakeDaemon(("high-hash",))
    blocks, metrics = submitter(daemon, on_accepted=on_accepted)
    assert (await blocks.submit(candidate())).reason == "high-hash"
    daemon.fail_submit = True
    found = await blocks.submit(candidate())
    assert (found.accepted, found.reason) == (False, "submit-failed: connection refused")
    assert news == [] and blocks_counted(metrics, "rejected") == 2


async def test_the_block_record_goes_to_the_spool_after_its_share(tmp_path: Path) -> None:
    spool = ShareSpool(tmp_path, clock=lambda: 0.0)
    recorder = ShareRecorder(spool)
    seq, _ = recorder.share(COIN.key, ShareAccepted("s", "addr1.rig", "addr1", "j1", 101, 1.0, 1e6, True, T0))
    job = replace(JOB, template=replace(JOB.template, target=COIN.diff1_target // 8))
    blocks, _ = submitter(FakeDaemon(), recorder=recorder)
    blocks.submit_soon(candidate(job))
    await blocks.drain(timeout=5)
    assert spool.read_from(seq, 10) == [BlockRecord(seq + 1, T0, COIN.key, 101, DISPLAY, 4_000_000_000, "addr1",
                                                    "rig", seq, 8.0, "pplns", True, "accepted", 10_000, "fee",
                                                    2.0)]
    await spool.close()
