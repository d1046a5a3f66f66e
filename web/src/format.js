// Formatting helpers: amounts, bytes, durations, accounts.

/** Smallest chain units in one UNIT. */
export const UNIT = 10n ** 12n;

/**
 * A decimal string of smallest units shown as UNIT with up to `decimals` decimals (truncated, never rounded
 * up), e.g. "1500000000000" -> "1.5". Returns "—" for null/undefined and the input itself if it is not a number.
 */
export function formatUnit(amount, decimals = 6) {
  if (amount === null || amount === undefined || amount === '') return '—';
  let v;
  try {
    v = BigInt(amount);
  } catch {
    return String(amount);
  }
  const neg = v < 0n;
  if (neg) v = -v;
  const whole = v / UNIT;
  let frac = (v % UNIT).toString().padStart(12, '0').slice(0, decimals).replace(/0+$/, '');
  const wholeText = whole.toLocaleString('en-US');
  let text = frac ? `${wholeText}.${frac}` : wholeText;
  if (text === '0' && v > 0n) text = `< 0.${'0'.repeat(decimals - 1)}1`;
  return (neg ? '−' : '') + text;
}

/** "0.5" (UNIT) -> 500000000000n; throws a readable Error on bad input. */
export function parseUnit(text) {
  const s = String(text).trim();
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!s || !m || (m[1] === '' && !m[2])) throw new Error('Enter an amount in UNIT, like 0.5');
  const frac = m[2] || '';
  if (frac.length > 12) throw new Error('At most 12 decimals');
  const v = BigInt(m[1] || '0') * UNIT + BigInt(frac.padEnd(12, '0') || '0');
  if (v <= 0n) throw new Error('The amount must be more than 0');
  return v;
}

/** A decimal string of smallest units as a float of UNIT, for charts only. */
export function unitNumber(amount) {
  try {
    return Number(BigInt(amount)) / 1e12;
  } catch {
    return null;
  }
}

export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** Seconds -> "m:ss" (or "h:mm:ss"). */
export function formatDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '—';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** "0x1234567890abcdef" -> "0x1234…cdef" */
export function shortAccount(a) {
  if (!a) return '—';
  a = String(a);
  if (a.length <= 14) return a;
  const head = a.startsWith('0x') ? 6 : 4;
  return `${a.slice(0, head)}…${a.slice(-4)}`;
}

export function shortId(id) {
  if (!id) return '—';
  id = String(id);
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}

export function formatInt(n) {
  return Number.isFinite(Number(n)) ? Number(n).toLocaleString('en-US') : '—';
}

/** Renditions as "720p · 360p", highest first. */
export function formatRenditions(renditions) {
  if (!renditions || !renditions.length) return '';
  return [...renditions]
    .sort((a, b) => (b.height || b.bandwidth || 0) - (a.height || a.bandwidth || 0))
    .map((r) => r.name || (r.height ? `${r.height}p` : `${Math.round(r.bandwidth / 1000)} kb/s`))
    .join(' · ');
}
