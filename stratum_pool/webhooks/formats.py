"""The body each kind of receiver takes for an event: (content type, body bytes, extra headers)."""

from __future__ import annotations

import json

from stratum_pool.webhooks.events import Event, as_json
from stratum_pool.webhooks.settings import NotifySettings

Request = tuple[str, bytes, dict[str, str]]
JSON = "application/json"


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def build(target: NotifySettings, event: Event) -> Request:
    if target.format == "discord":  # an incoming webhook: the message is "content"
        return JSON, _json({"content": event.text, "username": "stratum-pool"}), {}
    if target.format == "telegram":  # the Bot API's sendMessage
        return JSON, _json({"chat_id": target.chat_id, "text": event.text, "disable_web_page_preview": True}), {}
    if target.format == "ntfy":  # a plain-text POST to the topic; title and tags in headers
        tags = {"block_found": "tada", "worker_offline": "warning", "worker_online": "white_check_mark",
                "payout_sent": "moneybag"}[event.kind]
        return "text/plain; charset=utf-8", event.text.encode(), {"Title": event.title, "Tags": tags}
    return JSON, _json(as_json(event)), {}
