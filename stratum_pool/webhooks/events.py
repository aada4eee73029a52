"""What can happen that someone wants to hear of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One happening. ``key`` identifies it (a receiver gets it at most once); ``address`` is the miner it
    concerns ("" for the pool's own); ``fields`` are the facts, all JSON values."""

    kind: str  # one of settings.EVENTS
    key: str
    coin: str
    address: str
    time: float
    fields: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # one line for people (chat formats)
    title: str = ""


def _amount(units: int, symbol: str) -> str:
    return f"{units // 100_000_000}.{units % 100_000_000:08d} {symbol}".strip()


def block_found(coin: str, symbol: str, height: int, block_hash: str, address: str, worker: str, reward: int,
                time: float) -> Event:
    who = f"{address}.{worker}" if worker else address
    return Event("block_found", f"block:{coin}:{block_hash}", coin, address, time,
                 {"height": height, "hash": block_hash, "worker": worker, "reward": reward},
                 f"Block {height} found on {coin} by {who} (reward {_amount(reward, symbol)}), hash {block_hash}",
                 f"Block {height} found")


def worker_offline(coin: str, address: str, worker: str, last_share: float, minutes: float, time: float) -> Event:
    who = f"{address}.{worker}" if worker else address
    return Event("worker_offline", f"offline:{coin}:{address}.{worker}:{last_share:.3f}", coin, address, time,
                 {"worker": worker, "last_share": last_share, "minutes": minutes},
                 f"Worker {who} on {coin} sent no share for {minutes:g} minutes", f"Worker {worker or address} offline")


def worker_online(coin: str, address: str, worker: str, offline_since: float, time: float) -> Event:
    who = f"{address}.{worker}" if worker else address
    return Event("worker_online", f"online:{coin}:{address}.{worker}:{offline_since:.3f}", coin, address, time,
                 {"worker": worker, "offline_since": offline_since},
                 f"Worker {who} on {coin} is mining again", f"Worker {worker or address} back")


def payout_sent(coin: str, symbol: str, address: str, amount: int, txid: str, batch: int, time: float) -> Event:
    return Event("payout_sent", f"payout:{coin}:{batch}:{address}", coin, address, time,
                 {"amount": amount, "txid": txid, "batch": batch},
                 f"Payout of {_amount(amount, symbol)} on {coin} sent to {address}, transaction {txid}",
                 "Payout sent")


def as_json(event: Event) -> dict[str, Any]:
    return {"event": event.kind, "id": event.key, "coin": event.coin, "address": event.address,
            "time": event.time, **event.fields, "text": event.text}
