"""The provider's sending rate, shared by every worker process: a schedule of send slots kept in
Redis.

Each send takes the next free slot of its channel (one every 1/rate seconds) and waits for it.
The slot is taken by a Lua script that reads Redis's own clock, so every worker on every machine
agrees on one schedule and the provider sees at most its configured rate, whatever the number
of workers. A slot further off than ``MAX_WAIT`` is not taken: the job tries again later rather
than hold a worker thread for long. Without Redis (tests, one process) the same schedule is
kept in memory.

A worker thread sleeps for its slot only when it is at most ``COMMS_SLOT_HOLD_SECONDS`` away.
A slot further off is kept for the message, and its job goes back to the queue until then
(``RunLater``): the slot's time travels in the job's next message, whose run sends at that time
without taking another. A Dramatiq process gives its threads the messages it fetched in arrival
order: threads sleeping for slots drained that order at the provider's rate, and the redemption
transfers fetched behind a backlog of SMS waited for all of their slots (``bench/redeem.py``).

Work queued by the thousand (a campaign's messages) is paced when it is queued (``spread``):
each job's message is delayed to about when the rate will let it go, so the first run of
nearly every job finds its slot within the hold instead of running once only to be put back.
No slot is taken ahead: a payment code queued meanwhile takes the next free slot, not one
after the whole campaign.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping

from flask import Flask, current_app

from portal.jobs import dispatch
from portal.jobs.lifecycle import RunLater

MAX_WAIT = 10.0  # seconds a send may wait for its slot before its job is tried again later
RATE_SETTINGS = {
    "sms": "SMS_RATE_PER_SECOND",
    "whatsapp": "WHATSAPP_RATE_PER_SECOND",
    "email": "EMAIL_RATE_PER_SECOND",
}
# KEYS[1]: the channel's next free slot (microseconds of Redis time). ARGV: the interval and the
# longest wait, in microseconds. Returns the wait for the slot taken, or -1 if none was taken.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
if wait > tonumber(ARGV[2]) then return -1 end
local expire_ms = math.floor((wait + interval) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval), 'PX', expire_ms)
return wait
"""
# KEYS[1] as above: the seconds (microseconds) until the channel's next free slot, 0 if free.
_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then return 0 end
return slot - now
"""


class SlotNotFree(Exception):
    """The next slot is further off than ``MAX_WAIT``: try again later."""

    def __init__(self, channel: str):
        super().__init__(f"The {channel} provider's sending rate is used up for now.")


class RedisSchedule:
    def __init__(self, client, prefix: str):
        self.client, self.prefix = client, prefix
        self.script = client.register_script(_TAKE_SLOT)
        self.peek_script = client.register_script(_PEEK)

    def take(self, channel: str, interval: float, max_wait: float) -> float | None:
        found = self.script(
            keys=[f"{self.prefix}:{channel}"],
            args=[int(interval * 1_000_000), int(max_wait * 1_000_000)],
        )
        return None if int(found) < 0 else int(found) / 1_000_000

    def backlog(self, channel: str) -> float:
        return int(self.peek_script(keys=[f"{self.prefix}:{channel}"])) / 1_000_000


class MemorySchedule:
    def __init__(self):
        self.lock = threading.Lock()
        self.slots: dict[str, float] = {}

    def take(self, channel: str, interval: float, max_wait: float) -> float | None:
        with self.lock:
            now = time.monotonic()
            slot = max(self.slots.get(channel, 0.0), now)
            if slot - now > max_wait:
                return None
            self.slots[channel] = slot + interval
            return slot - now

    def backlog(self, channel: str) -> float:
        with self.lock:
            return max(self.slots.get(channel, 0.0) - time.monotonic(), 0.0)


def rate_of(config: Mapping, channel: str) -> float:
    """Messages per second the channel's provider takes (0: no limit)."""
    return float(config.get(RATE_SETTINGS.get(channel, "")) or 0)


def schedule_for(app: Flask):
    found = app.extensions.get("comms_rate_schedule")
    if found is None:
        url = app.config.get("REDIS_URL")
        if url and app.config.get("BROKER") == "redis":
            import redis

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            # One schedule per provider account: two portals on one account share its rate.
            account = app.config.get("SMS_ACCOUNT") or app.config.get("WHATSAPP_PHONE_ID") or ""
            tag = hashlib.sha256(account.encode()).hexdigest()[:12]
            found = RedisSchedule(client, f"portal:comms:rate:{tag}")
        else:
            found = MemorySchedule()
        app.extensions["comms_rate_schedule"] = found
    return found


def spread(channel: str, count: int, already: int = 0) -> list[int] | None:
    """Delays (ms) that pace ``count`` sends at the channel's rate, after the slots already
    taken and after ``already`` sends paced by an earlier call of the same batch; None when the
    channel has no rate. An estimate, not a reservation: each send still takes its slot."""
    rate = rate_of(current_app.config, channel)
    if rate <= 0 or count <= 0:
        return None
    app = current_app._get_current_object()
    start = schedule_for(app).backlog(channel) + already / rate
    return [int((start + i / rate) * 1000) for i in range(count)]


def wait_for_slot(channel: str, *, max_wait: float = MAX_WAIT, hold: float | None = None) -> float:
    """Take the channel's next send slot and sleep until it; the seconds waited.

    A slot an earlier run of this job took (``RunLater``'s, carried by this run's message) is
    used instead of taking another. A slot more than ``hold`` (``COMMS_SLOT_HOLD_SECONDS``)
    away is kept for this job and ``RunLater`` raised: its next run comes at the slot's time.
    Raises ``SlotNotFree`` when the next slot is more than ``max_wait`` away (none is taken)."""
    if hold is None:
        hold = float(current_app.config.get("COMMS_SLOT_HOLD_SECONDS", 0.2))
    kept = dispatch.delivery_options().get("send_slot")
    if kept and kept.get("channel") == channel:
        wait = min(max(float(kept["at"]) - time.time(), 0.0), hold)
        if wait > 0:
            time.sleep(wait)
        return wait
    rate = rate_of(current_app.config, channel)
    if rate <= 0:
        return 0.0
    app = current_app._get_current_object()
    wait = schedule_for(app).take(channel, 1.0 / rate, max_wait)
    if wait is None:
        raise SlotNotFree(channel)
    if wait > hold:
        # Wall-clock time: the next run may be in another process or on another machine.
        slot = {"channel": channel, "at": time.time() + wait}
        raise RunLater(int(wait * 1000), {"send_slot": slot})
    if wait > 0:
        time.sleep(wait)
    return wait
