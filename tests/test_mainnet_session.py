"""Real proof of work through the server's own code path: four mainnet blocks submitted to a Session.

For each block a job is rebuilt from the block (tests/mainnet.py), sent to a session exactly as the server
would send it, and the block's own extranonce, ntime, nonce and rolled version bits are submitted as a
miner would. The session must call it a block candidate with the block's real hash, the notify line must
let a miner rebuild the very same header, and the assembled block must be the original bytes.
"""

from __future__ import annotations

import orjson
import pytest
from mainnet import MAINNET_HEIGHTS, VERSION_ROLLING_MASK, mainnet_case
from miner import FakeWork, NotifiedJob

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.pow import check_share
from stratum_pool.coins import get_coin
from stratum_pool.jobs.builder import assemble_block
from stratum_pool.protocol.actions import Action, BlockCandidate, Send, ShareAccepted
from stratum_pool.protocol.session import Session, SessionConfig

BTC = get_coin("bitcoin", "mainnet")
# The genesis coinbase's address: any valid mainnet address serves as the solo user name.
USER = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa.rig"


def sent_lines(actions: list[Action]) -> list[dict[str, object]]:
    lines = []
    for action in actions:
        if isinstance(action, Send):
            lines.extend(orjson.loads(line) for line in action.data.splitlines())
    return lines


def line(method: str, params: list[object], rid: int) -> bytes:
    return orjson.dumps({"id": rid, "method": method, "params": params}) + b"\n"


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_real_block_found_through_the_session(height: int) -> None:
    case = mainnet_case(height)
    work = FakeWork()
    work.add(case.job)
    session = Session(
        SessionConfig(coin=BTC, extranonce2_size=len(case.extranonce2), initial_difficulty=1.0),
        work, lambda a: address_to_script(a, BTC), "s1", case.extranonce1, clock=lambda: float(case.ntime),
    )
    out = sent_lines(session.feed_line(line("mining.subscribe", ["bitaxe/2.4"], 1)))
    assert out[0]["result"][1] == case.extranonce1.hex()  # type: ignore[index]
    out = sent_lines(session.feed_line(line("mining.configure", [["version-rolling"],
                                                                  {"version-rolling.mask": "ffffffff"}], 2)))
    assert out[0]["result"]["version-rolling.mask"] == f"{VERSION_ROLLING_MASK:08x}"  # type: ignore[index]
    out = sent_lines(session.feed_line(line("mining.authorize", [USER, "x"], 3)))
    notify = next(m for m in out if m.get("method") == "mining.notify")

    # The miner's side: rebuild the header from the notify line alone.
    seen = NotifiedJob.from_params(notify["params"], 1.0)  # type: ignore[arg-type]
    header, _ = check_share(BTC.algorithm_id, seen.coinb1, case.extranonce1, case.extranonce2, seen.coinb2,
                            seen.branch, case.version, seen.prevhash, case.ntime, seen.nbits, case.nonce)
    assert header == case.header

    params: list[object] = [USER, seen.job_id, case.extranonce2.hex(), f"{case.ntime:08x}", f"{case.nonce:08x}"]
    if case.version_bits is not None:
        params.append(f"{case.version_bits:08x}")
    actions = session.feed_line(line("mining.submit", params, 4))
    assert sent_lines(actions)[0] == {"id": 4, "result": True, "error": None}
    accepted = [a for a in actions if isinstance(a, ShareAccepted)]
    candidates = [a for a in actions if isinstance(a, BlockCandidate)]
    assert len(accepted) == 1 and accepted[0].block
    assert accepted[0].achieved >= BTC.diff1_target / case.job.template.target
    assert len(candidates) == 1
    candidate = candidates[0]
    assert candidate.block_hash[::-1].hex() == case.expected_hash_display
    assert candidate.header == case.header
    block = assemble_block(candidate.job, candidate.extranonce1, candidate.extranonce2, candidate.header)
    assert block == case.raw_block


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_one_changed_nonce_is_no_block(height: int) -> None:
    case = mainnet_case(height)
    work = FakeWork()
    work.add(case.job)
    session = Session(SessionConfig(coin=BTC, extranonce2_size=len(case.extranonce2)), work,
                      lambda a: address_to_script(a, BTC), "s1", case.extranonce1, clock=lambda: float(case.ntime))
    session.feed_line(line("mining.subscribe", [], 1))
    session.feed_line(line("mining.configure", [["version-rolling"], {"version-rolling.mask": "1fffe000"}], 2))
    session.feed_line(line("mining.authorize", [USER, "x"], 3))
    params: list[object] = [USER, case.job.job_id, case.extranonce2.hex(), f"{case.ntime:08x}",
                            f"{(case.nonce + 1) % 2**32:08x}"]
    if case.version_bits is not None:
        params.append(f"{case.version_bits:08x}")
    actions = session.feed_line(line("mining.submit", params, 4))
    assert not [a for a in actions if isinstance(a, BlockCandidate)]
    assert sent_lines(actions)[0]["error"][0] == 23  # type: ignore[index]
