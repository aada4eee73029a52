"""The ``[[notify]]`` tables: where notifications go, in which format, for which events and addresses."""

from __future__ import annotations

from dataclasses import dataclass, field

from stratum_pool.setting import ANY, above, at_least, rule

FORMATS = ("json", "discord", "telegram", "ntfy")
EVENTS = ("block_found", "worker_offline", "worker_online", "payout_sent")


def _url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and len(value) > len("https://") and " " not in value


@dataclass(frozen=True, slots=True)
class NotifySettings:
    # The receiver: a webhook URL (Discord), https://api.telegram.org/bot<TOKEN>/sendMessage (Telegram), a topic
    # URL (ntfy) or any URL taking a JSON POST. It may hold a secret: it is never logged or shown.
    url: str = field(metadata=rule(_url, "an http:// or https:// URL"))
    format: str = field(default="json", metadata=rule(lambda v: v in FORMATS, f"one of {', '.join(FORMATS)}"))
    events: tuple[str, ...] = field(default=EVENTS, metadata=rule(
        lambda v: len(v) > 0 and all(isinstance(e, str) and e in EVENTS for e in v),
        f"a non-empty list of {', '.join(EVENTS)}", kind=list))
    # Only these payout addresses' events (the pool's own events, none); empty: every address.
    addresses: tuple[str, ...] = field(default=(), metadata=rule(
        lambda v: all(isinstance(a, str) and a.isalnum() for a in v), "a list of addresses", kind=list))
    chat_id: str = field(default="", metadata=ANY)  # Telegram: the chat the bot writes to
    # A worker is offline when it sent no share for this long; "back" when it sends one again.
    offline_minutes: float = field(default=10.0, metadata=above(0))
    timeout_seconds: float = field(default=10.0, metadata=above(0, 120))
    # Retries with doubling waits from 1 s up to max_backoff_seconds; given up after max_attempts.
    max_attempts: int = field(default=12, metadata=at_least(1))
    max_backoff_seconds: float = field(default=300.0, metadata=above(0))
