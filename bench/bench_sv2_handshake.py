"""Stratum V2's Noise layer: one whole handshake, and one share-sized frame through the encrypted transport.

A table, then one JSON line. Run with ``python bench/run.py`` (every bench) or ``python
bench/bench_sv2_handshake.py`` (this one). Figures are the best of several timed runs, per operation:

- the responder's side of a handshake (what the pool pays per connecting miner: a fresh ephemeral key, two
  ellswift ECDHs, the key schedule, the answer's encryption);
- a whole handshake, both sides (adds the initiator's key, its two ECDHs and the certificate's BIP340 check);
- ``send`` and ``receive`` of a SubmitSharesExtended frame (8-byte extranonce: 33-byte payload, 39-byte frame,
  71 bytes on the wire: 22 + 33 + 16) and of its SubmitShares.Success answer (20-byte payload).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stratum_pool.protocol.v2.frame import CHANNEL_MSG_BIT, encode_frame
from stratum_pool.protocol.v2.keys import ServerKeys, new_secret
from stratum_pool.protocol.v2.noise import NoiseInitiator, NoiseResponder

REPEATS = 5
NOW = 1_800_000_000
SUBMIT_SHARES_EXTENDED = 0x1B
SUBMIT_SHARES_SUCCESS = 0x1C


def best_per_call(fn: Callable[[], object], number: int, repeats: int = REPEATS) -> float:
    """Seconds per call of ``fn``, the best of ``repeats`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def best_receive(number: int, frame: bytes, upstream: bool, repeats: int = REPEATS) -> float:
    """Seconds per ``receive`` of one encrypted ``frame``, one read per frame (a miner's pace)."""
    best = float("inf")
    for _ in range(repeats):
        initiator, responder = handshake(KEYS)
        sender, receiver = (initiator, responder) if upstream else (responder, initiator)
        wires = [sender.send(frame) for _ in range(number)]
        receive = receiver.receive
        start = time.perf_counter()
        for wire in wires:
            receive(wire)
        best = min(best, (time.perf_counter() - start) / number)
    return best


def handshake(keys: ServerKeys) -> tuple[NoiseInitiator, NoiseResponder]:
    initiator = NoiseInitiator(keys.authority_xonly, now=NOW)
    responder = NoiseResponder.for_server(keys, NOW)
    responder.receive(initiator.data_to_send())
    initiator.receive(responder.data_to_send())
    return initiator, responder


KEYS = ServerKeys(new_secret(), NOW)


def run(scale: float = 1.0) -> dict[str, object]:
    """``scale`` < 1 shortens every run (the test of this bench)."""
    n_handshake = max(1, int(300 * scale))
    n_frame = max(1, int(20_000 * scale))
    first = NoiseInitiator(KEYS.authority_xonly, now=NOW).data_to_send()

    def responder_side() -> None:
        responder = NoiseResponder.for_server(KEYS, NOW)
        responder.receive(first)
        responder.data_to_send()

    share = encode_frame(CHANNEL_MSG_BIT, SUBMIT_SHARES_EXTENDED, bytes(24) + b"\x08" + bytes(8))
    success = encode_frame(CHANNEL_MSG_BIT, SUBMIT_SHARES_SUCCESS, bytes(20))
    initiator, responder = handshake(KEYS)
    results = {
        "responder_handshake_us": best_per_call(responder_side, n_handshake) * 1e6,
        "full_handshake_us": best_per_call(lambda: handshake(KEYS), n_handshake) * 1e6,
        "share_send_us": best_per_call(lambda: initiator.send(share), n_frame) * 1e6,
        "share_receive_us": best_receive(n_frame, share, upstream=True) * 1e6,
        "success_send_us": best_per_call(lambda: responder.send(success), n_frame) * 1e6,
        "success_receive_us": best_receive(n_frame, success, upstream=False) * 1e6,
    }
    wire = len(initiator.send(share))
    rows = [
        ("handshake, responder side (the pool)", results["responder_handshake_us"]),
        ("handshake, both sides (incl. certificate check)", results["full_handshake_us"]),
        (f"SubmitSharesExtended send ({len(share)} B frame, {wire} B wire)", results["share_send_us"]),
        ("SubmitSharesExtended receive", results["share_receive_us"]),
        (f"SubmitShares.Success send ({len(success)} B frame)", results["success_send_us"]),
        ("SubmitShares.Success receive", results["success_receive_us"]),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'operation'.ljust(width)}  per call")
    for name, us in rows:
        print(f"{name.ljust(width)}  {us:9.2f} us")
    result: dict[str, object] = {"bench": "sv2_handshake", "share_frame_bytes": len(share), "share_wire_bytes": wire}
    result.update({k: round(v, 2) for k, v in results.items()})
    print(json.dumps(result))
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
