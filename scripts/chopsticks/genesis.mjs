#!/usr/bin/env node
// Makes a raw chain spec for `chopsticks --genesis` from the Ferry runtime wasm, without a node build:
//
//   node scripts/chopsticks/genesis.mjs RUNTIME_WASM OUT_JSON
//
// It does what `chain-spec-builder create … named-preset development` does (sc-chain-spec 53,
// GenesisConfigBuilderRuntimeCaller::get_storage_for_named_preset): the runtime's default genesis config, the
// `development` preset merged over it, `GenesisBuilder_build_state` on empty storage, and `:code` = the wasm.
// The runtime runs in Chopsticks' executor (smoldot), so the storage is the runtime's own.
//
// Chopsticks is loaded from its install dir (scripts/fastchain install), not from this clone.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const installDir =
  process.env.FERRY_CHOPSTICKS_DIR ?? join(process.env.FERRY_CACHE ?? join(homedir(), '.cache/ferry'), 'chopsticks');
// CommonJS builds, as the chopsticks CLI itself loads them (chopsticks.cjs).
const require = createRequire(join(installDir, 'package.json'));
const { runTask, getRuntimeVersion, destroyWorker } = require('@acala-network/chopsticks-core');
const { compactAddLength, compactFromU8a, hexToU8a, stringToU8a, u8aToHex, u8aToString, stringToHex } =
  require('@polkadot/util');

// JSON whose numbers stay the text they were written as. Balances are u128, and JSON.parse makes every number a
// double: 12345678901234567891 comes back as 12345678901234567000, and 10^21 as "1e+21", which the runtime's
// serde_json cannot read as a u128. (Node 20 has no JSON.rawJSON.)
export class Num {
  constructor(text) {
    this.text = text;
  }
}

export function parseJson(text) {
  let i = 0;
  const token = (re) => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw new Error(`bad JSON at offset ${i}: ${text.slice(i, i + 20)}`);
    i = re.lastIndex;
    return m[0];
  };
  const WS = /[ \t\n\r]*/y;
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const LITERAL = /true|false|null/y;
  const punct = (c) => {
    token(WS);
    if (text[i] !== c) throw new Error(`bad JSON at offset ${i}: expected ${c}`);
    i++;
  };
  const peek = () => (token(WS), text[i]);
  const value = () => {
    const c = peek();
    if (c === '{') {
      i++;
      const obj = {};
      if (peek() === '}') return i++, obj;
      do {
        token(WS);
        const key = JSON.parse(token(STRING));
        punct(':');
        Object.defineProperty(obj, key, { value: value(), enumerable: true, writable: true, configurable: true });
      } while (peek() === ',' && ++i);
      punct('}');
      return obj;
    }
    if (c === '[') {
      i++;
      const arr = [];
      if (peek() === ']') return i++, arr;
      do arr.push(value());
      while (peek() === ',' && ++i);
      punct(']');
      return arr;
    }
    if (c === '"') return JSON.parse(token(STRING));
    if (c === '-' || (c >= '0' && c <= '9')) return new Num(token(NUMBER));
    return JSON.parse(token(LITERAL));
  };
  const v = value();
  if (peek() !== undefined) throw new Error(`bad JSON: trailing text at offset ${i}`);
  return v;
}

export function writeJson(v) {
  if (v instanceof Num) return v.text;
  if (Array.isArray(v)) return `[${v.map(writeJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${writeJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Num);

// sc_chain_spec::json_patch::merge (sc-chain-spec 53): objects merge key by key, anything else replaces, and a
// `null` in the patch sets the key to null (it does not remove it, unlike RFC 7386).
export function merge(base, patch) {
  if (!isObject(base) || !isObject(patch)) return patch;
  for (const k of Object.keys(patch)) {
    const old = Object.hasOwn(base, k) ? base[k] : null;
    Object.defineProperty(base, k, { value: merge(old, patch[k]), enumerable: true, writable: true, configurable: true });
  }
  return base;
}

// One runtime call on an empty storage, as BasicExternalities::new_empty() in sc-chain-spec.
async function call(wasm, method, argHex) {
  const empty = {
    getStorage: async () => undefined,
    getNextKey: async () => undefined,
  };
  const r = await runTask(
    { wasm, calls: [[method, [argHex]]], mockSignatureHost: false, allowUnresolvedImports: false, runtimeLogLevel: 0 },
    empty,
  );
  if (r.Error) throw new Error(`${method}: ${r.Error}`);
  return r.Call;
}

// GenesisBuilder_get_preset(Option<PresetId>) -> Option<Vec<u8>>, both SCALE-encoded; PresetId is a String.
async function preset(wasm, name) {
  const arg = name === null ? '0x00' : u8aToHex(new Uint8Array([1, ...compactAddLength(stringToU8a(name))]));
  const out = hexToU8a((await call(wasm, 'GenesisBuilder_get_preset', arg)).result);
  if (out[0] !== 1) throw new Error(`the runtime has no genesis preset ${name ?? '(default)'}`);
  const [offset, len] = compactFromU8a(out.subarray(1));
  return parseJson(u8aToString(out.subarray(1 + offset, 1 + offset + len.toNumber())));
}

async function main() {
  const [wasmPath, outPath] = process.argv.slice(2);
  if (!wasmPath || !outPath) {
    console.error('usage: genesis.mjs RUNTIME_WASM OUT_JSON');
    process.exit(2);
  }
  const wasm = u8aToHex(readFileSync(wasmPath));
  const version = await getRuntimeVersion(wasm);

  const config = merge(await preset(wasm, null), await preset(wasm, 'development'));
  // GenesisBuilder_build_state(Vec<u8> json) -> Result<(), String>
  const built = await call(wasm, 'GenesisBuilder_build_state', u8aToHex(compactAddLength(stringToU8a(writeJson(config)))));
  if (built.result !== '0x00') {
    const msg = hexToU8a(built.result).subarray(1);
    const [offset, len] = compactFromU8a(msg);
    throw new Error(`GenesisBuilder_build_state: ${u8aToString(msg.subarray(offset, offset + len.toNumber()))}`);
  }

  const top = new Map(built.storageDiff.filter(([, v]) => v !== null));
  top.set(stringToHex(':code'), wasm);
  // Sorted: Chopsticks' genesis provider answers "next key" by walking the object's keys in order.
  const sorted = Object.fromEntries([...top.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

  const spec = {
    name: 'Ferry Development (Chopsticks)',
    id: 'ferry_dev_chopsticks', // what Chopsticks answers to system_chain (a node answers with the name)
    chainType: 'Development',
    // Only for Polkadot.js display; the runtime's SS58Prefix is 42 and its UNIT is 10^12.
    properties: { ss58Format: 42, tokenDecimals: 12, tokenSymbol: 'UNIT' },
    genesis: { raw: { top: sorted, childrenDefault: {} } },
  };
  // Written beside the target and moved over it, so a failed run never leaves half a spec.
  writeFileSync(`${outPath}.tmp`, JSON.stringify(spec, null, 1));
  renameSync(`${outPath}.tmp`, outPath);
  console.error(
    `[chopsticks] spec ${outPath}: ${version.specName} v${version.specVersion}, ${top.size} keys (incl. :code)`,
  );
  await destroyWorker();
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(`[chopsticks] genesis: ${process.env.LOG_LEVEL === 'debug' ? e.stack : (e.message ?? e)}`);
    process.exit(1);
  });
}
