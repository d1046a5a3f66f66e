#!/usr/bin/env node
// Runs the Ferry runtime in Chopsticks on 127.0.0.1, in the foreground, until SIGTERM or SIGINT:
//
//   node scripts/chopsticks/up.mjs SPEC_JSON PORT [DB_FILE]
//
// One block per transaction (Instant mode), each final at once. With DB_FILE the blocks are kept there and the
// next start resumes from the highest one.
//
// This is Chopsticks' own start-up (chopsticks-core `setup`, chopsticks `setupWithServer`) with two changes:
// - Resuming: `setup` always builds a block on top of genesis first, and chopsticks-db keeps one block per
//   number, so with `resume: true` that block replaces the stored #1 and the resumed chain no longer hangs
//   together (every transaction then fails with `badProof`). Here the stored head is loaded instead, and a new
//   block is built only on a fresh chain.
// - Block #1: Chopsticks reads the clock several times while it builds a block on a genesis without
//   `Timestamp::Now` (Aura slot, relay slot, timestamp inherent); when a 6 s slot boundary falls between the
//   reads the runtime panics ("Parachain slot must match relay-derived slot"). A fresh chain gets a genesis
//   `Timestamp::Now` one slot before the current slot's start, so every read agrees and block #1 is stamped with
//   the current slot's start.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

const installDir =
  process.env.FERRY_CHOPSTICKS_DIR ?? join(process.env.FERRY_CACHE ?? join(homedir(), '.cache/ferry'), 'chopsticks');
// CommonJS builds, as the chopsticks CLI itself loads them (chopsticks.cjs).
const require = createRequire(join(installDir, 'package.json'));
const core = require('@acala-network/chopsticks-core');
const { SqliteDatabase } = require('@acala-network/chopsticks-db');
const { createServer } = require('@acala-network/chopsticks/server');
const { handler } = require('@acala-network/chopsticks/rpc/index');
const { u8aToHex } = require('@polkadot/util');
const { xxhashAsHex } = require('@polkadot/util-crypto');

const HOST = '127.0.0.1';
const log = (msg) => console.error(`[chopsticks] ${msg}`);

// Chopsticks' createServer moves to the next free port when this one is taken; a Ferry client would then talk to
// whatever holds the port. Fail instead.
const portFree = (port) =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });

async function main() {
  const [specPath, portArg, dbPath] = process.argv.slice(2);
  const port = Number(portArg);
  if (!specPath || !Number.isInteger(port)) {
    console.error('usage: up.mjs SPEC_JSON PORT [DB_FILE]');
    process.exit(2);
  }
  if (!(await portFree(port))) throw new Error(`port ${port} on ${HOST} is in use`);

  const specText = readFileSync(specPath, 'utf8');
  const spec = JSON.parse(specText); // values are hex strings: no number precision at stake
  const top = spec.genesis.raw.top;

  // A database belongs to the spec it was made from: resuming it on another runtime would mix two chains.
  const specHash = createHash('sha256').update(specText).digest('hex');
  const db = dbPath ? new SqliteDatabase(dbPath) : undefined;
  const stored = db ? await db.queryHighestBlock() : null;
  if (stored) {
    const made = existsSync(`${dbPath}.spec`) ? readFileSync(`${dbPath}.spec`, 'utf8').trim() : '';
    if (made !== specHash) throw new Error(`${dbPath} was made from another chain spec; start afresh with 'ferry chain up --fresh' or 'scripts/fastchain fresh'`);
  } else {
    if (dbPath) writeFileSync(`${dbPath}.spec`, `${specHash}\n`);
    const slotMs = await core.getAuraSlotDuration(top['0x3a636f6465']); // :code
    const now = Math.floor(Date.now() / slotMs) * slotMs - slotMs;
    const key = xxhashAsHex('Timestamp', 128) + xxhashAsHex('Now', 128).slice(2);
    const le = new Uint8Array(8);
    new DataView(le.buffer).setBigUint64(0, BigInt(now), true);
    top[key] = u8aToHex(le);
    // Keep the keys sorted: the genesis provider answers "next key" in object order.
    spec.genesis.raw.top = Object.fromEntries(Object.entries(top).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  // As chopsticks-core `setup` does, without its unconditional first block.
  const genesis = new core.GenesisProvider(spec);
  const api = new core.Api(genesis);
  await api.isReady;
  const genesisHash = await api.getFinalizedHead();
  const chain = new core.Blockchain({
    api,
    buildBlockMode: core.BuildBlockMode.Instant,
    inherentProviders: core.inherentProviders,
    db,
    header: { hash: genesisHash, number: 0 },
  });

  if (stored) {
    const head = await chain.loadBlockFromDB(stored.number);
    if (!head) throw new Error(`cannot load block #${stored.number} from ${dbPath}`);
    await chain.setHead(head);
    log(`resumed at block #${stored.number} ${stored.hash} from ${dbPath}`);
  } else {
    // The timestamp above makes block #1 deterministic; the retry is for anything else transient.
    for (let attempt = 1; chain.head.number === 0 && attempt <= 3; attempt++) await chain.newBlock();
    if (chain.head.number === 0) throw new Error('block #1 did not build (see the log above)');
    log(`fresh chain, block #1 ${chain.head.hash}`);
  }

  const server = await createServer(handler({ chain }), port, HOST);
  if (server.port !== port) throw new Error(`listening on ${server.port}, not ${port}`);
  log(`${spec.name} RPC on ws://${server.addr} and http://${server.addr}`);

  let closing = false;
  const stop = async (sig) => {
    if (closing) return;
    closing = true;
    log(`${sig}: stopping`);
    await server.close();
    await chain.close(); // closes the database too
    await core.destroyWorker();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e) => {
  log(`up: ${process.env.LOG_LEVEL === 'debug' ? e.stack : (e.message ?? e)}`);
  process.exit(1);
});
