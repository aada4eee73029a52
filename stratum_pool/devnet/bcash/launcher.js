#!/usr/bin/env node
/*
 * launcher.js - bcash 1.1.1 (the bcoin team's Bitcoin Cash full node) as stratum-pool's Bitcoin Cash
 * regtest daemon.
 *
 * Does what node_modules/bcash/bin/node does (a FullNode with the wallet plugin, configured from argv,
 * BCASH_* env and bcash.conf), plus these in-process adjustments to bcash 1.1.1's bugs and defaults
 * (one more is a small patch applied at install: see stratum_pool/devnet/bcash.py, PATCHES):
 *
 *  1. The regtest network uses Bitcoin Core's (and Bitcoin ABC's / BCHN's) base58 prefixes (P2PKH 0x6f,
 *     P2SH 0xc4, WIF 0xef) instead of bcash's own; the cashaddr prefix stays "bchreg".
 *  2. getblocktemplate with a longpollid: bcash turns the id's hash into a hex string and compares it
 *     with the tip's hash Buffer ("Assertion failed."); it is turned into a Buffer.
 *  3. --template-refresh-on-tx: a new mempool transaction makes the next template at once (bcash waits
 *     10 s or the next block), and wakes long polls.
 *  4. The wallet: sendmany / sendtoaddress answer once the transaction is in the node's mempool (bcash
 *     does not wait for its own relay); getnewaddress without an argument uses the default account;
 *     gettransaction works on a send (bcash: "Invalid integer value.", it reads a fee that is never set)
 *     and says its confirmations; listsinceblock without a block hash lists every transaction (bcash
 *     crashes); coinbases are categorised as Core does (immature, generate, orphan; bcash: receive).
 *  5. Defaults for a private devnet: network regtest, no worker processes, no DNS seeds, the wallet
 *     database next to the chain (not in ~/.bcash), no external-IP discovery over DNS. Flags still win.
 *  6. One extra wallet RPC method, getwalletheight: the chain height the wallet has processed.
 *
 * SIGTERM / SIGINT close the node (chain and wallet databases flushed) and exit 0.
 */

'use strict';

const path = require('path');

const here = __dirname;
const bcashDir = path.dirname(require.resolve('bcash/package.json', { paths: [here] }));
const req = (p) => require(path.join(bcashDir, p));

function argValue(name) {
  const flag = `--${name}=`;
  for (const arg of process.argv.slice(2)) {
    if (arg.startsWith(flag))
      return arg.substring(flag.length);
  }
  return null;
}

function argFlag(name) {
  const v = argValue(name);
  return process.argv.slice(2).includes(`--${name}`) || v === 'true' || v === '1';
}

// bcash picks its default network when first required: make it the one we run.
const networkType = argValue('network') || process.env.BCASH_NETWORK || 'regtest';
process.env.BCASH_NETWORK = networkType;

/* 1. Core's regtest base58 prefixes. */
const networks = req('lib/protocol/networks');
Object.assign(networks.regtest.addressPrefix, { pubkeyhash: 0x6f, scripthash: 0xc4 });
networks.regtest.keyPrefix.privkey = 0xef;

const util = req('lib/utils/util');
const NodeRPC = req('lib/node/rpc');

/* 2. The longpoll id's tip hash as a Buffer (bcash 1.1.1 passes a string to Buffer.equals). */
NodeRPC.prototype.handleLongpoll = async function handleLongpoll(lpid) {
  if (typeof lpid !== 'string' || lpid.length !== 72 || !/^[0-9a-f]{72}$/i.test(lpid))
    throw new Error('Invalid longpoll ID.');
  const watched = util.fromRev(lpid.slice(0, 64));
  if (!this.chain.tip.hash.equals(watched))
    return;
  await this.longpoll();
};

const refreshOnTx = argFlag('template-refresh-on-tx');
if (refreshOnTx) {
  /* 3. Every new mempool transaction: the next template is built anew, long polls answer. */
  const bindChain = NodeRPC.prototype.bindChain;
  NodeRPC.prototype.bindChain = function () {
    const first = !this.boundChain;
    bindChain.call(this);
    if (first && this.mempool) {
      this.node.on('tx', () => {
        if (this.attempt)
          this.refreshBlock();
      });
    }
  };
}

/* 4. The wallet's sends wait for the node's mempool. */
const NodeClient = req('lib/wallet/nodeclient');
NodeClient.prototype.send = async function send(tx) {
  await this.node.relay(tx);
};

/* 4. The wallet's transaction details carry the fee and the confirmations its RPC reads. */
const Wallet = req('lib/wallet/wallet');
const toDetails = Wallet.prototype.toDetails;
Wallet.prototype.toDetails = async function (wtxs) {
  const out = await toDetails.call(this, wtxs);
  const height = this.wdb.state.height;
  for (const details of Array.isArray(out) ? out : [out]) {
    if (!details)
      continue;
    details.fee = details.getFee();
    details.confirmations = details.getDepth(height);
  }
  return out;
};

/* 4. Coinbases in Core's categories: orphan (not in the chain), immature (not spendable yet), generate. */
const consensus = req('lib/protocol/consensus');

function coinbaseCategory(json, wtx, height) {
  if (!wtx.tx.isCoinbase())
    return json;
  const depth = wtx.getDepth(height);
  const category = depth < 1 ? 'orphan'
    : depth < consensus.COINBASE_MATURITY + 1 ? 'immature' : 'generate';
  for (const entry of [json, ...(json.details || [])]) {
    if (entry.category === 'receive')
      entry.category = category;
  }
  return json;
}

const WalletRPC = req('lib/wallet/rpc');
const toListTX = WalletRPC.prototype._toListTX;
WalletRPC.prototype._toListTX = async function (wtx) {
  return coinbaseCategory(await toListTX.call(this, wtx), wtx, this.wdb.state.height);
};
const toWalletTX = WalletRPC.prototype._toWalletTX;
WalletRPC.prototype._toWalletTX = async function (wtx, watchOnly) {
  return coinbaseCategory(await toWalletTX.call(this, wtx, watchOnly), wtx, this.wdb.state.height);
};

/* 4. listsinceblock ( "blockhash" target_confirmations include_watchonly ): without a block hash,
 * every transaction (Core); bcash 1.1.1 reads a chain the wallet does not have. */
WalletRPC.prototype.listSinceBlock = async function (args, help) {
  if (help || args.length > 3)
    throw new Error('listsinceblock ( "blockhash" target_confirmations include_watchonly )');
  const hex = args.length > 0 && args[0] ? String(args[0]) : null;
  const target = args.length > 1 ? Number(args[1]) : 1;
  let since = -1;
  if (hex) {
    if (!/^[0-9a-f]{64}$/i.test(hex))
      throw new Error('Invalid block hash.');
    const entry = await this.client.getEntry(util.fromRev(hex));
    if (!entry)
      throw new Error('Block not found.');
    since = entry.height;
  }
  const height = this.wdb.state.height;
  const transactions = [];
  for (const wtx of await this.wallet.getHistory()) {
    // a transaction in a block after `since`, or not in a block yet
    if (since !== -1 && wtx.height !== -1 && wtx.height <= since)
      continue;
    transactions.push(await this._toListTX(wtx));
  }
  // the block `target` - 1 below the tip: a caller passing it next time misses nothing
  const lastHeight = Math.max(0, height - Math.max(1, target) + 1);
  const last = await this.client.getEntry(lastHeight);
  return {
    transactions,
    lastblock: last ? util.revHex(last.hash) : util.revHex(consensus.ZERO_HASH)
  };
};

const Network = req('lib/protocol/network');
const FullNode = req('lib/node/fullnode');
const WalletPlugin = req('lib/wallet/plugin');

process.title = 'bcash';

const node = new FullNode({
  config: true,
  argv: true,
  env: true,
  logFile: true,
  logConsole: true,
  logLevel: 'info',
  memory: false,
  workers: false,
  listen: true,
  network: networkType,
  seeds: [],
  loader: require
});

Network.set(node.network.type);

// A devnet node has no public address to find: skip the DNS queries (and the wait for them).
node.pool.discoverExternal = async () => {};

if (!node.config.bool('no-wallet') && !node.has('walletdb')) {
  // bcash puts the wallet database in ~/.bcash without --wallet-prefix
  if (!node.config.has('wallet-prefix'))
    node.config.set('wallet-prefix', node.config.prefix);
  node.use(WalletPlugin);
}

if (node.has('walletdb')) {
  const wallet = node.require('walletdb');
  const rpc = wallet.rpc;

  /* 4. getnewaddress without an account name: the default account (bcash: "Account not found."). */
  const getNewAddress = rpc.calls.getnewaddress;
  rpc.calls.getnewaddress = function (args, help) {
    return getNewAddress.call(this, args.length === 0 ? ['default'] : args, help);
  };

  /* 6. getwalletheight. */
  rpc.add('getwalletheight', async (args, help) => {
    if (help || args.length !== 0)
      throw new Error('getwalletheight');
    return wallet.wdb.state.height;
  });
}

let closing = null;

function shutdown(signal) {
  if (closing)
    return closing;
  console.error(`[launcher] ${signal}: closing node`);
  closing = (async () => {
    try {
      await node.close();
    } catch (err) {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    }
    console.error('[launcher] closed');
    process.exit(0);
  })();
  return closing;
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

process.on('unhandledRejection', (err) => {
  throw err;
});

(async () => {
  await node.ensure();
  await node.open();
  await node.connect();
  node.startSync();
  console.error(`[launcher] bcash ${req('package.json').version} up: network=${node.network.type}`
    + ` prefix=${node.config.prefix} refresh-on-tx=${refreshOnTx}`);
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
