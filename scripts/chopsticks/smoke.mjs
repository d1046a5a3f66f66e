#!/usr/bin/env node
// Checks a running dev chain the way Ferry's client uses it, and times a transfer:
//
//   node scripts/chopsticks/smoke.mjs [PORT]
//
// JSON-RPC over HTTP (chain name, finalized head, metadata, the methods subxt needs), a finalized-heads
// subscription over WebSocket, then a balances transfer_keep_alive from //Alice to //Bob: submit → in block →
// finalized. Exits non-zero on the first failure.
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

const installDir =
  process.env.FERRY_CHOPSTICKS_DIR ?? join(process.env.FERRY_CACHE ?? join(homedir(), '.cache/ferry'), 'chopsticks');
const require = createRequire(join(installDir, 'package.json'));
const WebSocket = require('ws');
const { ApiPromise, WsProvider } = require('@polkadot/api');
const { Keyring } = require('@polkadot/keyring');
const { cryptoWaitReady } = require('@polkadot/util-crypto');

const port = Number(process.argv[2] ?? process.env.FERRY_RPC_PORT ?? 9944);
const http = `http://127.0.0.1:${port}`;
const ws = `ws://127.0.0.1:${port}`;
const ok = (what, detail = '') => console.log(`ok   ${what}${detail ? `: ${detail}` : ''}`);
const fail = (what) => {
  throw new Error(what);
};

async function rpc(method, params = []) {
  const res = await fetch(http, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: 1, jsonrpc: '2.0', method, params }),
  });
  const body = await res.json();
  if (body.error) fail(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

// Subscribes over a raw WebSocket, runs `trigger` once subscribed, and resolves with the first notification
// that `accept` takes.
function notification(method, params, { trigger, accept = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(ws);
    const done = (f, v) => (clearTimeout(timer), sock.close(), f(v));
    const timer = setTimeout(() => done(reject, new Error(`${method}: no notification in 20 s`)), 20_000);
    sock.on('open', () => sock.send(JSON.stringify({ id: 1, jsonrpc: '2.0', method, params })));
    sock.on('message', (data) => {
      const msg = JSON.parse(data);
      if (msg.id === 1 && msg.error) done(reject, new Error(`${method}: ${msg.error.message}`));
      else if (msg.id === 1) trigger?.().catch((e) => done(reject, e));
      else if (msg.params?.result !== undefined && accept(msg.params.result)) done(resolve, msg.params.result);
    });
    sock.on('error', reject);
  });
}

async function main() {
  ok('system_chain', await rpc('system_chain'));
  const fin = await rpc('chain_getFinalizedHead');
  const head = await rpc('chain_getHeader', [fin]);
  ok('chain_getFinalizedHead', `${fin} (#${parseInt(head.number, 16)})`);
  const meta = await rpc('state_getMetadata');
  ok('state_getMetadata', `${(meta.length - 2) / 2} bytes`);

  const { methods } = await rpc('rpc_methods');
  const wanted = [
    'author_submitAndWatchExtrinsic', 'chain_subscribeFinalizedHeads', 'chain_subscribeNewHeads',
    'chain_getBlockHash', 'chain_getBlock', 'state_call', 'state_getStorage', 'chainHead_v1_follow',
    'archive_v1_storage', 'transactionWatch_v1_submitAndWatch', 'chain_subscribeAllHeads',
  ];
  for (const m of wanted) console.log(`${methods.includes(m) ? 'has ' : 'NO  '} ${m}`);
  for (const m of wanted.slice(0, 7)) if (!methods.includes(m)) fail(`missing ${m}`);

  // Blocks are built on demand: subscribe, then have an empty block built, and wait for its notification.
  const number = parseInt(head.number, 16);
  const newer = (h) => parseInt(h.number, 16) > number;
  const finHead = await notification('chain_subscribeFinalizedHeads', [], { trigger: () => rpc('dev_newBlock'), accept: newer });
  ok('chain_subscribeFinalizedHeads', `notified of the new block #${parseInt(finHead.number, 16)}`);
  const follow = await notification('chainHead_v1_follow', [false], {
    trigger: () => rpc('dev_newBlock'),
    accept: (ev) => ev.event === 'finalized',
  });
  ok('chainHead_v1_follow', `finalized event for ${follow.finalizedBlockHashes.length} block(s)`);

  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(ws), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const before = (await api.query.system.account(bob.address)).data.free.toBigInt();
  const amount = 10n ** 12n;
  const t0 = performance.now();
  const times = {};
  await new Promise((resolve, reject) => {
    api.tx.balances
      .transferKeepAlive(bob.address, amount)
      .signAndSend(alice, ({ status, dispatchError }) => {
        times[status.type] ??= performance.now() - t0;
        if (dispatchError) reject(new Error(`transfer failed: ${dispatchError.toString()}`));
        if (status.isFinalized) resolve();
      })
      .catch(reject);
  });
  const after = (await api.query.system.account(bob.address)).data.free.toBigInt();
  if (after - before !== amount) fail(`Bob got ${after - before}, not ${amount}`);
  const ms = (k) => (times[k] === undefined ? '-' : `${Math.round(times[k])} ms`);
  ok('transfer_keep_alive //Alice → //Bob', `ready ${ms('Ready')}, in block ${ms('InBlock')}, finalized ${ms('Finalized')}`);
  await api.disconnect();
}

main().catch((e) => {
  console.error(`FAIL ${e.message ?? e}`);
  process.exit(1);
});
