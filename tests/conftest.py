"""Fixtures shared by the suite: real regtest daemons (litecoind pairs, bcoin nodes)."""

pytest_plugins = ["daemon_fixtures", "bcoin_fixtures", "pg_fixtures", "bcash_fixtures"]
