-- Schema 1: coins, accounts, workers, shares (time-partitioned), statistics, blocks, credits, payouts,
-- the ledger and balances, and the spool checkpoint that makes share loading exactly-once.
-- Money is bigint base units (satoshis) everywhere.

CREATE TABLE coins (
    id          smallserial PRIMARY KEY,
    key         text NOT NULL UNIQUE,              -- e.g. 'bitcoin-regtest' (coins.Coin.key)
    symbol      text NOT NULL,
    maturity    integer NOT NULL CHECK (maturity >= 0)
);

CREATE TABLE accounts (
    id               bigserial PRIMARY KEY,
    coin_id          smallint NOT NULL REFERENCES coins (id),
    address          text NOT NULL,
    payout_threshold bigint CHECK (payout_threshold IS NULL OR payout_threshold > 0),  -- NULL: the pool default
    is_fee_account   boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (coin_id, address)
);

CREATE TABLE workers (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id),
    name             text NOT NULL,                 -- '' for the unnamed worker
    user_agent       text NOT NULL DEFAULT '',
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    best_difficulty  double precision NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);

-- One row per accepted share. Partitioned by day; partitions are created ahead by the share loader.
CREATE TABLE shares (
    time        timestamptz NOT NULL,
    coin_id     smallint NOT NULL,
    account_id  bigint NOT NULL,
    worker_id   bigint NOT NULL,
    difficulty  double precision NOT NULL,          -- the difficulty the share was judged by (its weight)
    achieved    double precision NOT NULL,          -- the difficulty its hash reached
    height      integer NOT NULL,
    is_block    boolean NOT NULL DEFAULT false,
    node_id     smallint NOT NULL,
    seq         bigint NOT NULL                     -- position in that node's spool: orders shares exactly
) PARTITION BY RANGE (time);
CREATE INDEX shares_coin_seq ON shares (coin_id, node_id, seq);
CREATE INDEX shares_account_time ON shares (account_id, time);

-- Accepted/rejected counts and accepted difficulty per worker per minute and per day (hashrate history).
CREATE TABLE share_stats_minute (
    worker_id   bigint NOT NULL REFERENCES workers (id),
    minute      timestamptz NOT NULL,
    accepted    integer NOT NULL DEFAULT 0,
    rejected    integer NOT NULL DEFAULT 0,
    difficulty  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (worker_id, minute)
);
CREATE TABLE share_stats_day (
    worker_id   bigint NOT NULL REFERENCES workers (id),
    day         date NOT NULL,
    accepted    integer NOT NULL DEFAULT 0,
    rejected    integer NOT NULL DEFAULT 0,
    difficulty  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (worker_id, day)
);

CREATE TABLE blocks (
    id                bigserial PRIMARY KEY,
    coin_id           smallint NOT NULL REFERENCES coins (id),
    height            integer NOT NULL,
    hash              text NOT NULL UNIQUE,          -- display order hex
    reward            bigint NOT NULL CHECK (reward >= 0),
    finder_account_id bigint NOT NULL REFERENCES accounts (id),
    finder_worker_id  bigint REFERENCES workers (id),
    scheme            text NOT NULL,                 -- solo | pplns | prop
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'orphaned')),
    confirmations     integer NOT NULL DEFAULT 0,
    submit_result     text NOT NULL DEFAULT '',
    node_id           smallint NOT NULL,
    share_seq         bigint NOT NULL,               -- the spool position of the block's share
    found_at          timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blocks_pending ON blocks (coin_id) WHERE status = 'pending';

CREATE TABLE credits (
    id          bigserial PRIMARY KEY,
    block_id    bigint NOT NULL REFERENCES blocks (id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    amount      bigint NOT NULL CHECK (amount >= 0),
    scheme      text NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'paid', 'void')),
    UNIQUE (block_id, account_id)
);

CREATE TABLE payout_batches (
    id          bigserial PRIMARY KEY,
    coin_id     smallint NOT NULL REFERENCES coins (id),
    -- created: recorded, RPC not yet sent; sent: the wallet returned txid; failed: the wallet refused and
    -- the amounts went back to the balances; unknown: could not be reconciled, needs an operator.
    status      text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'sent', 'failed', 'unknown')),
    txid        text,
    total       bigint NOT NULL CHECK (total > 0),
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE UNIQUE INDEX payout_batches_one_open ON payout_batches (coin_id) WHERE status = 'created';

CREATE TABLE payouts (
    id          bigserial PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES payout_batches (id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    address     text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    UNIQUE (batch_id, account_id)
);

-- Append-only: every change of a confirmed balance. balances.confirmed always equals the sum here.
CREATE TABLE ledger (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    time        timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CHECK (kind IN ('credit', 'payout', 'payout_reverted', 'adjustment')),
    amount      bigint NOT NULL,                    -- signed: credits positive, payouts negative
    credit_id   bigint REFERENCES credits (id),
    batch_id    bigint REFERENCES payout_batches (id),
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX ledger_account ON ledger (account_id, id);

CREATE TABLE balances (
    account_id  bigint PRIMARY KEY REFERENCES accounts (id),
    confirmed   bigint NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- How far each node's share spool has been loaded; advanced in the same transaction as the rows it
-- loaded, which is what makes replay after a crash or an outage exactly-once.
CREATE TABLE spool_checkpoints (
    node_id     smallint PRIMARY KEY,
    seq         bigint NOT NULL,                    -- the last spool record loaded
    updated_at  timestamptz NOT NULL DEFAULT now()
);
