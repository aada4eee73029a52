"""The coin table: every difference between coins is a row of data here, not an ``if`` elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

ALGO_SHA256D = 0
ALGO_SCRYPT = 1
ALGORITHMS = {"sha256d": ALGO_SHA256D, "scrypt": ALGO_SCRYPT}

# Difficulty 1 target for sha256d: 0x00000000FFFF0000...0000 (bdiff), as bitcoind reports difficulty.
DIFF1_TARGET = 0xFFFF * 2**208


@dataclass(frozen=True, slots=True)
class Coin:
    """Parameters of one coin on one network."""

    name: str
    network: str
    symbol: str
    algorithm: str
    p2pkh_prefix: int
    p2sh_prefix: int
    bech32_hrp: str
    gbt_rules: tuple[str, ...]
    coinbase_maturity: int
    rpc_port: int
    stratum_port: int
    # Version bits a miner may roll (BIP310). Coins that use version bits for consensus narrow this.
    version_rolling_mask: int
    # Stratum difficulty 1 for scrypt coins is 65536 times easier than the sha256d diff-1 target
    # (the convention of cpuminer, cgminer and every Litecoin pool).
    share_multiplier: int
    block_time_seconds: int
    segwit: bool
    mweb: bool
    # CashAddr prefix ("bitcoincash"), "" for coins without cashaddr addresses
    cashaddr_prefix: str = ""
    # Derived from the fields above, once (read on the share path and in every log line):
    key: str = field(init=False, repr=False, compare=False)  # "bitcoin-mainnet", the COINS key
    diff1_target: int = field(init=False, repr=False, compare=False)  # the target of a share of difficulty 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", coin_key(self.name, self.network))
        object.__setattr__(self, "diff1_target", DIFF1_TARGET * self.share_multiplier)

    @property
    def algorithm_id(self) -> int:
        return ALGORITHMS[self.algorithm]


def coin_key(name: str, network: str) -> str:
    """The key of ``name`` on ``network`` in :data:`COINS` (``Coin.key``)."""
    return f"{name}-{network}"


_BIP310_MASK = 0x1FFFE000

COINS: dict[str, Coin] = {
    c.key: c
    for c in (
        Coin("bitcoin", "mainnet", "BTC", "sha256d", 0x00, 0x05, "bc", ("segwit",), 100, 8332, 3333,
             _BIP310_MASK, 1, 600, True, False),
        Coin("bitcoin", "testnet", "tBTC", "sha256d", 0x6F, 0xC4, "tb", ("segwit",), 100, 18332, 3333,
             _BIP310_MASK, 1, 600, True, False),
        Coin("bitcoin", "signet", "sBTC", "sha256d", 0x6F, 0xC4, "tb", ("segwit", "signet"), 100, 38332, 3333,
             _BIP310_MASK, 1, 600, True, False),
        Coin("bitcoin", "regtest", "rBTC", "sha256d", 0x6F, 0xC4, "bcrt", ("segwit",), 100, 18443, 3333,
             _BIP310_MASK, 1, 600, True, False),
        Coin("litecoin", "mainnet", "LTC", "scrypt", 0x30, 0x32, "ltc", ("mweb", "segwit"), 100, 9332, 3334,
             _BIP310_MASK, 65536, 150, True, True),
        Coin("litecoin", "testnet", "tLTC", "scrypt", 0x6F, 0x3A, "tltc", ("mweb", "segwit"), 100, 19332, 3334,
             _BIP310_MASK, 65536, 150, True, True),
        Coin("litecoin", "regtest", "rLTC", "scrypt", 0x6F, 0x3A, "rltc", ("mweb", "segwit"), 100, 19443, 3334,
             _BIP310_MASK, 65536, 150, True, True),
        # Bitcoin Cash (BCHN src/chainparams.cpp): Bitcoin's base58 version bytes, no segwit, cashaddr
        Coin("bitcoincash", "mainnet", "BCH", "sha256d", 0x00, 0x05, "", (), 100, 8332, 3335,
             _BIP310_MASK, 1, 600, False, False, "bitcoincash"),
        Coin("bitcoincash", "testnet", "tBCH", "sha256d", 0x6F, 0xC4, "", (), 100, 18332, 3335,
             _BIP310_MASK, 1, 600, False, False, "bchtest"),
        Coin("bitcoincash", "regtest", "rBCH", "sha256d", 0x6F, 0xC4, "", (), 100, 18443, 3335,
             _BIP310_MASK, 1, 600, False, False, "bchreg"),
    )
}


def get_coin(name: str, network: str) -> Coin:
    """The coin for ``name`` on ``network``; KeyError names what exists."""
    key = coin_key(name, network)
    try:
        return COINS[key]
    except KeyError:
        raise KeyError(f"unknown coin {key!r}; known: {', '.join(sorted(COINS))}") from None
