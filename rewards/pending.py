"""Recalculations waiting for a worker, coalesced per program in the broker's Redis.

A launch's signups each used to publish a recalculation of their own: a thousand signups a second meant a
thousand Celery messages, each taking the program's counters lock in turn to fold a single delta row, and a
worker busy well after the load had stopped. Now a change marks its program as pending (and its ambassadors
in the program's pending hash), and publishes one `rewards.recalculate_pending` message only when the
program was not marked already. The task unmarks the program before it reads anything, so a change that
commits after that finds no mark and publishes again: no change is left without a recalculation that
starts after its commit.

Both steps are one Redis transaction each (MULTI/EXEC):

- `mark` (after the change's commit): HINCRBY each ambassador's version in the hash, SET the flag NX with a
  time to live. The flag was not there: publish.
- `take` (first thing in the task): DEL the flag, HGETALL the hash. The task recalculates those ambassadors
  and the program, then `clear` removes each ambassador whose version is still the one it read (a Lua
  script): one marked again meanwhile stays for the next run.

What can be lost, and what repairs it: a message lost by the broker leaves the flag, which expires after
FLAG_TTL seconds (the next change publishes again), and leaves the hash, which the periodic sweep
(`rewards.fold_counts`, every 30 s) takes as the task would; a worker killed mid-task has its message
redelivered (acks late) and finds the ambassadors still in the hash; Redis itself lost (a restart without
persistence) loses marks, and the sweep's fold and the reconciliation (every 15 minutes) grant what they
missed. The database stays the source of truth: marks only say where to look.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

PREFIX = "parrain:recalc:"
# A program marked pending whose message was lost is published again by the first change after this.
FLAG_TTL = 60
# A hash nobody takes (its program deleted, say) does not stay for ever; the sweep takes live ones long before.
HASH_TTL = 7 * 24 * 3600

# KEYS[1] the hash; ARGV pairs of (ambassador id, version read): remove those not marked again since.
_CLEAR = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


def flag_key(program_id: int) -> str:
    return f"{PREFIX}{program_id}:flag"


def hash_key(program_id: int) -> str:
    return f"{PREFIX}{program_id}:ambassadors"


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    # Short timeouts and one try: a broker that is down costs a request one refused connection, and the
    # change is left to the sweep and the reconciliation (rewards.services.recalculation_enqueue).
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))


def client() -> redis.Redis:
    """The broker's Redis (the Celery app's, so a test that points the app at another Redis moves this too)."""
    from config.celery import app

    return _client_for(str(app.conf.broker_url))


def mark(program_id: int, ambassador_ids: list[int]) -> bool:
    """Mark the program (and these ambassadors) as waiting for a recalculation. True: the caller publishes."""
    if not ambassador_ids:  # a change of the program's counts only (an unattributed signup): the flag alone
        return bool(client().set(flag_key(program_id), b"1", nx=True, ex=FLAG_TTL))
    with client().pipeline(transaction=True) as pipe:
        key = hash_key(program_id)
        for ambassador_id in ambassador_ids:
            pipe.hincrby(key, str(ambassador_id), 1)
        pipe.expire(key, HASH_TTL)
        pipe.set(flag_key(program_id), b"1", nx=True, ex=FLAG_TTL)
        return bool(pipe.execute()[-1])


def take(program_id: int) -> dict[int, bytes]:
    """Unmark the program; its pending ambassadors, each with the version read (for `clear`)."""
    with client().pipeline(transaction=True) as pipe:
        pipe.delete(flag_key(program_id))
        pipe.hgetall(hash_key(program_id))
        _deleted, pending = pipe.execute()
    return {int(ambassador_id): version for ambassador_id, version in pending.items()}


def clear(program_id: int, taken: dict[int, bytes]) -> int:
    """Remove the ambassadors recalculated, unless marked again since `take`. Returns how many were removed."""
    if not taken:
        return 0
    args: list[str | bytes] = []
    for ambassador_id, version in taken.items():
        args += [str(ambassador_id), version]
    return int(client().eval(_CLEAR, 1, hash_key(program_id), *args))


def pending_programs() -> list[int]:
    """Programs with a pending hash (the sweep takes them, whatever became of their message)."""
    found = set()
    for key in client().scan_iter(match=f"{PREFIX}*:ambassadors", count=500):
        name = key.decode() if isinstance(key, bytes) else key
        try:
            found.add(int(name[len(PREFIX) :].split(":", 1)[0]))
        except ValueError:
            continue
    return sorted(found)
