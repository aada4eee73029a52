"""Coverage-guided fuzzing of Session.feed_line with atheris (optional: ``pip install atheris``).

Not collected by pytest (no ``test_`` prefix); tests/test_fuzz_session.py runs it briefly when atheris is
installed. Run longer by hand::

    PYTHONPATH=tests .venv/bin/python tests/fuzz_session_atheris.py -max_total_time=300

Each input is split into lines and fed to one session that was subscribed and authorized first. The
property: no exception escapes, every answer is a complete JSON line, and a request with a usable id gets
exactly one answer unless the session closed.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import orjson

    from stratum_pool.coins import get_coin
    from stratum_pool.protocol.actions import Close, Send
    from stratum_pool.protocol.session import Session, SessionConfig
    from stratum_pool.server.limits import WorkerRegistry

from miner import FakeWork, make_job

COIN = get_coin("bitcoin", "regtest")
ADDRESS = "bcrt1qfuzz"
CONFIG = SessionConfig(COIN, initial_difficulty=1e-6, submits_per_second=5.0, submit_burst=10)
WORK = FakeWork()
WORK.add(make_job("j1"))


def check_address(address: str) -> bytes:
    if address.startswith("bcrt1q") and address.isalnum():
        return bytes(22)
    raise ValueError("not a regtest address")


def new_session() -> Session:
    session = Session(CONFIG, WORK, check_address, "s1", bytes(4), lambda: 1_700_000_000.0,
                      admit=WorkerRegistry(2).admit)
    session.feed_line(b'{"id":1,"method":"mining.subscribe","params":[]}')
    session.feed_line(orjson.dumps({"id": 2, "method": "mining.authorize", "params": [f"{ADDRESS}.w", "x"]}))
    return session


def request_id(line: bytes) -> tuple[bool, object]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False, None
    if not isinstance(obj, dict) or "id" not in obj or obj.get("method") is None:
        return False, None
    rid = obj["id"]
    return isinstance(rid, int | str) and not isinstance(rid, bool), rid


def one_input(data: bytes) -> None:
    session = new_session()
    for line in data.split(b"\n"):
        actions = session.feed_line(line)
        answered = 0
        usable, rid = request_id(line.strip())
        for action in actions:
            if isinstance(action, Send):
                assert action.data.endswith(b"\n")
                for out in action.data.splitlines():
                    message = orjson.loads(out)
                    if message.get("method") is None and message["id"] == rid:
                        answered += 1
        if any(isinstance(a, Close) for a in actions):
            return
        if usable:
            assert answered == 1, (line, actions)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
