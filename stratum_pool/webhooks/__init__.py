"""Notifications to the operator's and miners' webhooks: block found, worker offline and back, payout sent.

``settings.py`` declares the ``[[notify]]`` tables; ``formats.py`` turns an event into the body each receiver
takes (generic JSON, Discord, Telegram bot, ntfy); ``notifier.py`` queues and sends them off the stratum
loop's hot path, with retries and backoff, once per event and receiver.
"""

from stratum_pool.webhooks.events import Event
from stratum_pool.webhooks.notifier import Notifier
from stratum_pool.webhooks.settings import EVENTS, FORMATS, NotifySettings

__all__ = ["EVENTS", "FORMATS", "Event", "Notifier", "NotifySettings"]
