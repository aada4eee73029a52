"""Templates in, jobs out: the current template, the jobs built from it, and recent jobs for late shares.

The manager does no I/O of its own: the pool hands it each getblocktemplate answer (``update``) and it
says whether that was a new block. Jobs are built lazily, once per payout key (the finder's address in
solo mode, ``""`` when the coinbase pays the pool), and kept for a few templates so a late share is told
"stale" rather than "unknown job".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from stratum_pool._native import JobBook
from stratum_pool.chain.coinbase import solo_outputs
from stratum_pool.coins import Coin
from stratum_pool.jobs.builder import make_job, share_transactions, template_from_gbt
from stratum_pool.jobs.job import Job, Template

# How many templates' jobs stay answerable. A template is refreshed every ~30 s and shares arrive within
# seconds of their job, so a handful covers any honest miner while bounding memory.
KEEP_TEMPLATES = 6
# Distinct payout scripts remembered (solo mode: one per miner address).
MAX_SCRIPT_CACHE = 100_000


class JobManager:
    def __init__(
        self,
        coin: Coin,
        *,
        extranonce_size: int,
        pool_tag: bytes,
        address_to_script: Callable[[str], bytes],
        solo: bool,
        pool_address: str = "",
        fee_address: str = "",
        fee_ppm: int = 0,
        node_id: int = 0,
        clock: Callable[[], float],
    ) -> None:
        self.coin = coin
        self.extranonce_size = extranonce_size
        self.pool_tag = pool_tag
        self._address_to_script = address_to_script
        self.solo = solo
        self._pool_script = address_to_script(pool_address) if pool_address else b""
        self._fee_script = address_to_script(fee_address) if fee_address else None
        self.fee_ppm = fee_ppm
        self._clock = clock
        self._node_prefix = f"{node_id:02x}"
        self._counter = 0
        self.template: Template | None = None
        self._clean = True
        self._current: dict[str, Job] = {}
        # the recent jobs by id and the tip, as the share core judges them (each job entered once)
        self.book = JobBook()
        self._templates: list[Template] = []
        self._scripts: OrderedDict[str, bytes] = OrderedDict()
        self.templates_received = 0

    def update(self, gbt: Mapping[str, Any]) -> bool:
        """Take a new getblocktemplate answer. Returns True when it builds on a new previous block."""
        template = template_from_gbt(dict(gbt), self.coin, self._clock())
        new_block = self.template is None or template.prevhash != self.template.prevhash
        if self.template is not None and not new_block:
            # a refresh on the same block: mostly the last template's transactions, kept once (not on the
            # new-block path, where little is in common and every millisecond delays the miners' work)
            template = share_transactions(template, self.template)
        self.template = template
        self.book.tip = template.prevhash
        self._clean = new_block
        self._current = {}
        self._templates.append(template)
        self.templates_received += 1
        if len(self._templates) > KEEP_TEMPLATES:
            dropped = self._templates.pop(0)
            book = self.book
            for job_id in list(book):
                job = book.get(job_id)
                if job is None or job.template is dropped:
                    book.discard(job_id)
        return new_block

    def current_job(self, payout_key: str) -> Job | None:
        """The job a session paying to ``payout_key`` should work on now (built on first use)."""
        if self.template is None:
            return None
        key = payout_key if self.solo else ""
        job = self._current.get(key)
        if job is None:
            job = self._build(self.template, key)
            self._current[key] = job
            self.book.add(job)
        return job

    def get_job(self, job_id: str) -> Job | None:
        return self.book.get(job_id)

    def reward_for(self, job: Job) -> int:
        """What the block of ``job`` pays to whom the pool credits: the finder in solo mode (after the
        coinbase fee output), the pool's wallet otherwise."""
        value = job.template.coinbase_value
        if self.solo and self._fee_script is not None:
            value -= value * self.fee_ppm // 1_000_000
        return value

    def is_stale(self, job: Job) -> bool:
        """A job is stale once the chain tip moved past the block it builds on."""
        return self.book.is_stale(job)

    def _build(self, template: Template, key: str) -> Job:
        self._counter += 1
        job_id = f"{self._node_prefix}{self._counter:06x}"
        if self.solo:
            # solo: the finder is paid in the coinbase, and the pool's fee (if any) beside him
            outputs = solo_outputs(template.coinbase_value, self._script_for(key), self._fee_script, self.fee_ppm)
        else:
            # pool modes: the whole reward goes to the pool's wallet; the fee is taken when crediting
            outputs = solo_outputs(template.coinbase_value, self._pool_script)
        return make_job(template, job_id, outputs, self.extranonce_size, self.pool_tag,
                        clean_jobs=self._clean, payout_key=key, created_at=self._clock())

    def _script_for(self, address: str) -> bytes:
        script = self._scripts.get(address)
        if script is None:
            script = self._address_to_script(address)
            self._scripts[address] = script
            if len(self._scripts) > MAX_SCRIPT_CACHE:
                self._scripts.popitem(last=False)
        return script
