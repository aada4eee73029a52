"""Real mainnet blocks pushed through the job builder and the share check: real proofs of work."""

from __future__ import annotations

import pytest
from mainnet import MAINNET_HEIGHTS, VERSION_ROLLING_MASK, mainnet_case

from stratum_pool.chain import pow as pow_module
from stratum_pool.chain.encoding import prevhash_from_stratum
from stratum_pool.chain.pow import check_share_py
from stratum_pool.chain.target import bits_to_target, hash_to_int, target_to_difficulty
from stratum_pool.jobs.builder import assemble_block, block_hash

CHECKERS = {"py": check_share_py, "pow.check_share": pow_module.check_share}


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_submission_finds_the_real_block(height: int, checker: str) -> None:
    case = mainnet_case(height)
    job = case.job
    version = job.template.version
    if case.version_bits is not None:
        version = (version & ~VERSION_ROLLING_MASK) | (case.version_bits & VERSION_ROLLING_MASK)
    assert version == case.version
    header, pow_hash = CHECKERS[checker](
        job.template.coin.algorithm_id,
        job.coinb1,
        case.extranonce1,
        case.extranonce2,
        job.coinb2,
        job.branch,
        version,
        job.template.prevhash,
        case.ntime,
        job.template.nbits,
        case.nonce,
    )
    assert header == case.header
    assert pow_hash[::-1].hex() == case.expected_hash_display
    assert block_hash(header) == case.expected_hash_internal
    network_target = bits_to_target(job.template.nbits)
    assert job.template.target == network_target
    assert hash_to_int(pow_hash) <= network_target
    achieved = target_to_difficulty(hash_to_int(pow_hash), job.template.coin.diff1_target)
    assert achieved >= target_to_difficulty(network_target)


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_assembled_block_is_the_original(height: int) -> None:
    case = mainnet_case(height)
    assert assemble_block(case.job, case.extranonce1, case.extranonce2, case.header) == case.raw_block


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_notify_prefix(height: int) -> None:
    case = mainnet_case(height)
    job = case.job
    job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime = job.notify_prefix
    assert job_id == job.job_id
    assert isinstance(prevhash, str) and prevhash_from_stratum(prevhash) == case.block.prevhash
    assert coinb1 == job.coinb1.hex() and coinb2 == job.coinb2.hex()
    assert branch == [job.branch[i : i + 32].hex() for i in range(0, len(job.branch), 32)]
    assert version == f"{job.template.version:08x}"
    assert nbits == f"{case.block.bits:08x}"
    assert ntime == f"{case.ntime:08x}"


def test_block_702861_rolls_version_bits() -> None:
    case = mainnet_case(702861)
    assert case.job.template.version == 0x20000004
    assert case.version_bits == 0x1FFFE000
    assert case.version == 0x3FFFE004


def test_block_574200_has_a_12_level_branch() -> None:
    assert len(mainnet_case(574200).job.template.merkle_branch) == 12
