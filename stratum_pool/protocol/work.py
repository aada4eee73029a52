"""Where sessions get their jobs: the job manager implements this; tests use a small fake."""

from __future__ import annotations

from typing import Protocol

from stratum_pool._native import JobBook
from stratum_pool.jobs.job import Job


class WorkSource(Protocol):
    # The live jobs and the tip, as the share core reads them: the work source enters each job it hands
    # out, discards the ones it drops and moves the tip (``get_job`` and ``is_stale`` answer from it).
    book: JobBook

    def current_job(self, payout_key: str) -> Job | None:
        """The newest job paying ``payout_key`` (an address in solo mode; ignored by pool-paid work)."""
        ...

    def get_job(self, job_id: str) -> Job | None:
        """A recent job by id, or None when it was never made or has been dropped."""
        ...

    def is_stale(self, job: Job) -> bool:
        """True when the job builds on a block that is no longer the chain tip."""
        ...
