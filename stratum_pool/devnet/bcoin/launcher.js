#!/usr/bin/env node
/*
 * launcher.js - bcoin 1.0.2 as stratum-pool's Bitcoin regtest daemon.
 *
 * Does what node_modules/bcoin/bin/node does (a FullNode with the wallet plugin, configured from
 * argv, BCOIN_* env and bcoin.conf), plus three in-process adjustments; nothing under node_modules
 * is edited:
 *
 *  1. The regtest network uses Bitcoin Core's address prefixes (P2PKH 0x6f, P2SH 0xc4, bech32 hrp
 *     "bcrt", WIF 0xef), so Core-format regtest addresses are accepted and printed everywhere.
 *  2. leveldown 5 turns a null range option (gt/lt/gte/lte) into the key "null", so every range
 *     query bdb makes (it always passes all four, unused ones as null) comes back empty on disk.
 *     The leveldown iterator drops null/undefined range options before they get that far.
 *  3. Defaults for a private devnet: network regtest, no worker processes, no DNS seeds, the
 *     wallet database next to the chain (not in ~/.bcoin), no external-IP discovery over DNS.
 *     Command-line flags still win.
 *  4. One extra wallet RPC method, getwalletheight (see below).
 *
 * SIGTERM / SIGINT close the node (chain and wallet databases flushed) and exit 0.
 */

'use strict';

const path = require('path');

const here = __dirname;
const bcoinDir = path.dirname(require.resolve('bcoin/package.json', { paths: [here] }));
const req = (p) => require(path.join(bcoinDir, p));

function argValue(name) {
  const flag = `--${name}=`;
  for (const arg of process.argv.slice(2)) {
    if (arg.startsWith(flag))
      return arg.substring(flag.length);
  }
  return null;
}

// bcoin picks its default network when first required: make it the one we run.
const networkType = argValue('network') || process.env.BCOIN_NETWORK || 'regtest';
process.env.BCOIN_NETWORK = networkType;

/* 1. Bitcoin Core's regtest prefixes. */
const networks = req('lib/protocol/networks');
Object.assign(networks.regtest.addressPrefix, {
  pubkeyhash: 0x6f,
  scripthash: 0xc4,
  bech32: 'bcrt'
});
networks.regtest.keyPrefix.privkey = 0xef;

/* 2. Drop null range options on the way into leveldown. */
const RANGE_OPTIONS = ['gt', 'gte', 'lt', 'lte'];
// bdb's on-disk backend is exactly `require('leveldown')` as bdb resolves it.
const bdbDir = path.dirname(require.resolve('bdb/package.json', { paths: [bcoinDir] }));
const LevelDOWN = require(path.join(bdbDir, 'lib', 'level.js'));

function patchIterator(proto) {
  if (!proto || proto.__stratumPoolNullRangeFix)
    return;
  const iterator = proto.iterator;
  proto.iterator = function (options) {
    if (options && typeof options === 'object') {
      const clean = {};
      for (const key of Object.keys(options)) {
        if (RANGE_OPTIONS.includes(key) && options[key] == null)
          continue;
        clean[key] = options[key];
      }
      options = clean;
    }
    return iterator.call(this, options);
  };
  proto.__stratumPoolNullRangeFix = true;
}

patchIterator(LevelDOWN.prototype);

const Network = req('lib/protocol/network');
const FullNode = req('lib/node/fullnode');
const WalletPlugin = req('lib/wallet/plugin');

process.title = 'bcoin';

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

// A devnet node has no public address to find: skip the DNS queries to myip.opendns.com that
// connect() otherwise waits up to 2 s for (and that hold up a stop in the meantime).
node.pool.discoverExternal = async () => {};

if (!node.config.bool('no-wallet') && !node.has('walletdb')) {
  if (!node.config.has('wallet-prefix'))
    node.config.set('wallet-prefix', node.config.prefix);
  node.use(WalletPlugin);
}

/*
 * One extra wallet RPC method: `getwalletheight` - the chain height the wallet has processed
 * (it follows the chain a few milliseconds behind), so callers can wait for it after mining.
 */
if (node.has('walletdb')) {
  const wallet = node.require('walletdb');
  wallet.rpc.add('getwalletheight', async (args, help) => {
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
  console.error(`[launcher] bcoin ${req('package.json').version} up: network=${node.network.type}`
    + ` prefix=${node.config.prefix}`);
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
