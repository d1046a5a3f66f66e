// The operator's page: what the relay earned and is owed, how the node is doing, and the money in its lanes.
import uPlot from 'uplot';
import { get, post } from '../api.js';
import { h, fill, setText } from '../dom.js';
import { formatBytes, formatInt, formatUnit, parseUnit, shortAccount, shortId, unitNumber } from '../format.js';

const REFRESH_MS = 2000;

export default function operator(main) {
  document.title = 'Operator · Ferry';
  const ctl = new AbortController();
  const { signal } = ctl;
  let timer = null;
  let chart = null;
  let lastHistory = null;

  /** A figure card; returns the element holding the value. */
  function figure(label, testid, hint) {
    const value = h('strong', { class: 'value', dataset: testid ? { testid } : undefined }, '…');
    const sub = h('span', { class: 'sub muted small' }, hint || '');
    const el = h('div', { class: 'card figure' }, h('span', { class: 'label' }, label), value, sub);
    return { el, value, sub };
  }
  function setAmount(f, amount) {
    setText(f.value, formatUnit(amount));
    f.value.dataset.value = amount ?? '';
    f.value.title = amount != null ? `${amount} units` : '';
  }

  const pending = figure('Pending', 'earnings-pending', 'receipts not yet sent to the chain');
  const inFlight = figure('In flight', 'earnings-in-flight', 'sent, not yet finalized');
  const settled = figure('Settled', 'earnings-settled', 'paid out of viewers’ lanes');
  const opPaid = figure('Operator’s part', 'earnings-operator', 'after the creator’s share and the burn');
  const short = figure('Short', 'earnings-short', 'owed beyond what the lanes held');

  const served = figure('Bytes served', 'bytes-served');
  const sessions = figure('Active sessions', 'sessions');
  const peers = figure('Peers', 'peers');
  const cacheMeter = h('meter', { min: 0, max: 1, value: 0, 'aria-label': 'Cache use' });
  const cache = figure('Cache use', 'cache');
  cache.el.append(cacheMeter);
  const chain = figure('Chain', 'chain');
  const price = figure('Price', 'price');

  const earningsNote = h('p', { class: 'muted small', role: 'status' });
  const statusNote = h('p', { class: 'muted small', role: 'status' });
  const chartBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'Pending and settled earnings over time' });
  const chartEmpty = h('p', { class: 'muted small' });
  const contentBody = h('tbody');

  const free = figure('Free balance', 'free');
  const walletAccount = h('p', { class: 'muted small account' });
  const lanesBody = h('tbody');
  const walletNote = h('p', { class: 'muted small', role: 'status', 'aria-live': 'polite' });
  const laneRelay = h('input', { id: 'lane-relay', name: 'relay', placeholder: '0x…', autocomplete: 'off', spellcheck: 'false', required: true });
  const laneAmount = h('input', { id: 'lane-amount', name: 'amount', inputMode: 'decimal', value: '10', autocomplete: 'off', required: true, size: 8 });
  const laneButton = h('button', { type: 'submit', class: 'btn primary' }, 'Fund lane');
  const identity = h('dl', { class: 'details' });

  fill(
    main,
    h('h1', null, 'Operator'),
    h('section', { 'aria-labelledby': 'earn-h' },
      h('h2', { id: 'earn-h' }, 'Earnings (UNIT)'),
      h('div', { class: 'grid' }, pending.el, inFlight.el, settled.el, opPaid.el, short.el),
      earningsNote,
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'chart-h' },
      h('h2', { id: 'chart-h' }, 'Pending and settled over time'),
      chartBox,
      chartEmpty,
    ),
    h('section', { 'aria-labelledby': 'node-h' },
      h('h2', { id: 'node-h' }, 'This node'),
      h('div', { class: 'grid' }, served.el, sessions.el, peers.el, cache.el, chain.el, price.el),
      statusNote,
      h('details', null, h('summary', null, 'Identity and addresses'), identity),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'content-h' },
      h('h2', { id: 'content-h' }, 'Earnings by content'),
      h('div', { class: 'table-wrap' },
        h('table', null,
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Content'),
            h('th', { scope: 'col', class: 'num' }, 'Bytes'),
            h('th', { scope: 'col', class: 'num' }, 'Owed'),
            h('th', { scope: 'col', class: 'num' }, 'Settled'),
            h('th', { scope: 'col', class: 'num' }, 'Operator’s part'),
          )),
          contentBody,
        ),
      ),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'wallet-h' },
      h('h2', { id: 'wallet-h' }, 'Wallet and lanes'),
      walletAccount,
      h('div', { class: 'grid' }, free.el),
      h('div', { class: 'table-wrap' },
        h('table', null,
          h('caption', null, 'Lanes this node funded, one per relay it pays'),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Relay'),
            h('th', { scope: 'col', class: 'num' }, 'Funds (UNIT)'),
            h('th', { scope: 'col' }, 'State'),
            h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'Action')),
          )),
          lanesBody,
        ),
      ),
      h('form', { class: 'lane-form', onsubmit: fundLane },
        h('div', { class: 'field grow' }, h('label', { for: 'lane-relay' }, 'Relay account'), laneRelay),
        h('div', { class: 'field' }, h('label', { for: 'lane-amount' }, 'Amount (UNIT)'), laneAmount),
        laneButton,
      ),
      walletNote,
    ),
  );

  // --- chart --------------------------------------------------------------------------------------------------
  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  function makeChart(data) {
    const fg = css('--muted') || '#666';
    const grid = css('--line') || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const val = (_u, v) => (v == null ? '—' : v.toFixed(6));
    chart = new uPlot(
      {
        width: Math.max(280, chartBox.clientWidth),
        height: 240,
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [
          { ...axis, space: 70, values: (_u, ticks) => ticks.map(clock) },
          { ...axis, size: 70, values: (_u, ticks) => ticks.map((t) => +t.toFixed(6)) },
        ],
        series: [
          { label: 'Time', value: (_u, t) => (t == null ? '—' : clock(t)) },
          { label: 'Pending', stroke: css('--chart-a') || '#d97706', width: 2, value: val },
          { label: 'Settled', stroke: css('--chart-b') || '#2563eb', width: 2, fill: css('--chart-b-fill') || 'rgba(37,99,235,.1)', value: val },
        ],
      },
      data,
      chartBox,
    );
  }
  const ro = new ResizeObserver(() => chart && chart.setSize({ width: Math.max(280, chartBox.clientWidth), height: 240 }));
  ro.observe(chartBox);
  const scheme = matchMedia('(prefers-color-scheme: dark)');
  const recolour = () => {
    if (chart) chart.destroy();
    chart = null;
    if (lastHistory) drawChart(lastHistory);
  };
  scheme.addEventListener('change', recolour);

  function drawChart(history) {
    lastHistory = history;
    const rows = [...history].sort((a, b) => a.at - b.at);
    const data = [rows.map((r) => r.at), rows.map((r) => unitNumber(r.pending)), rows.map((r) => unitNumber(r.settled))];
    setText(chartEmpty, rows.length < 2 ? 'The chart fills in as the relay serves and settles.' : '');
    if (!chart) makeChart(data);
    else chart.setData(data);
  }

  // --- refresh ------------------------------------------------------------------------------------------------
  const shown = new WeakMap();
  /** Rebuild a table body only when its data changed, so focus and selection survive the polling. */
  function fillIfChanged(el, data, build) {
    const key = JSON.stringify(data);
    if (shown.get(el) === key) return;
    shown.set(el, key);
    fill(el, build());
  }

  async function loadEarnings() {
    try {
      const e = await get('/api/earnings', { signal });
      setAmount(pending, e.pending);
      setAmount(inFlight, e.in_flight);
      setAmount(settled, e.settled);
      setAmount(opPaid, e.operator_paid);
      setAmount(short, e.short);
      short.el.classList.toggle('warn', e.short != null && e.short !== '0');
      drawChart(e.history || []);
      const rows = e.by_content || [];
      fillIfChanged(contentBody, rows, () =>
        rows.length
          ? rows.map((c) =>
              h('tr', null,
                h('td', null, h('a', { href: `#/video/${encodeURIComponent(c.content)}`, title: c.content }, shortId(c.content))),
                h('td', { class: 'num' }, formatBytes(c.bytes)),
                h('td', { class: 'num', title: `${c.owed} units` }, formatUnit(c.owed)),
                h('td', { class: 'num', title: `${c.settled} units` }, formatUnit(c.settled)),
                h('td', { class: 'num', title: `${c.operator_paid} units` }, formatUnit(c.operator_paid)),
              ))
          : h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'Nothing served yet.')),
      );
      setText(earningsNote, '');
    } catch (err) {
      if (err.name !== 'AbortError') setText(earningsNote, `Could not read the earnings: ${err.message}`);
    }
  }

  async function loadStatus() {
    try {
      const s = await get('/api/status', { signal });
      setText(served.value, formatBytes(s.bytes_served));
      setText(served.sub, `${formatInt(s.chunks_served)} chunks`);
      setText(sessions.value, formatInt(s.sessions));
      setText(peers.value, formatInt(s.peers));
      const used = s.storage ? s.storage.used_bytes : 0;
      const limit = s.storage ? s.storage.limit_bytes : 0;
      setText(cache.value, formatBytes(used));
      setText(cache.sub, limit ? `of ${formatBytes(limit)} (${Math.round((100 * used) / limit)} %)` : 'no limit');
      cacheMeter.max = limit || 1;
      cacheMeter.value = limit ? used : 0;
      cacheMeter.high = (limit || 1) * 0.9;
      const c = s.chain || {};
      setText(chain.value, c.connected ? 'Connected' : 'Offline');
      chain.el.classList.toggle('warn', !c.connected);
      setText(chain.sub, c.connected ? `finalized #${c.finalized ?? '—'}` : c.error || (c.url ? `cannot reach ${c.url}` : 'no chain configured'));
      chain.sub.title = c.url || '';
      setText(price.value, formatUnit(s.price_per_mib));
      setText(price.sub, 'UNIT per MiB served');
      fillIfChanged(identity, [s.version, s.peer_id, s.account, s.addresses, c.url], () => [
        h('dt', null, 'Version'), h('dd', null, s.version || '—'),
        h('dt', null, 'Peer id'), h('dd', null, h('code', { class: 'id' }, s.peer_id || '—')),
        h('dt', null, 'Account'), h('dd', null, h('code', { class: 'id' }, s.account || '—')),
        h('dt', null, 'Chain'), h('dd', null, h('code', { class: 'id' }, c.url || '—')),
        h('dt', null, 'Addresses'),
        h('dd', null, (s.addresses || []).length ? h('ul', { class: 'plain' }, s.addresses.map((a) => h('li', null, h('code', { class: 'id' }, a)))) : '—'),
      ]);
      setText(statusNote, '');
    } catch (err) {
      if (err.name !== 'AbortError') setText(statusNote, `Could not read the node’s status: ${err.message}`);
    }
  }

  async function loadMoney() {
    try {
      const m = await get('/api/money', { signal });
      setText(walletAccount, `Account ${m.account}`);
      setAmount(free, m.free);
      const lanes = m.lanes || [];
      fillIfChanged(lanesBody, lanes, () =>
        lanes.length
          ? lanes.map((l) =>
              h('tr', null,
                h('td', null, h('code', { title: l.relay }, shortAccount(l.relay))),
                h('td', { class: 'num', title: `${l.funds} units` }, formatUnit(l.funds)),
                h('td', null, l.closing_at != null ? `closing at block #${l.closing_at}` : 'open'),
                h('td', null, l.closing_at == null
                  ? h('button', { type: 'button', class: 'btn small', onclick: (ev) => closeLane(l.relay, ev.currentTarget), 'aria-label': `Close the lane to ${l.relay}` }, 'Close')
                  : null),
              ))
          : h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No lanes.')),
      );
    } catch (err) {
      if (err.name !== 'AbortError') setText(walletNote, `Could not read the wallet: ${err.message}`);
    }
  }

  async function fundLane(e) {
    e.preventDefault();
    let amount;
    try {
      amount = parseUnit(laneAmount.value);
    } catch (err) {
      return note(err.message, true);
    }
    const relay = laneRelay.value.trim();
    laneButton.disabled = true;
    note('Sending…');
    try {
      const r = await post('/api/money/lanes', { relay, amount: amount.toString() }, { signal });
      note(`Lane funded in block #${r.block_number}: it holds ${formatUnit(r.funds)} UNIT.`);
      loadMoney();
    } catch (err) {
      if (err.name !== 'AbortError') note(`Funding the lane failed: ${err.message}`, true);
    } finally {
      laneButton.disabled = false;
    }
  }

  async function closeLane(relay, button) {
    button.disabled = true;
    note(`Closing the lane to ${shortAccount(relay)}…`);
    try {
      const r = await post(`/api/money/lanes/${encodeURIComponent(relay)}/close`, undefined, { signal });
      note(`Lane closed in block #${r.block_number}; its funds are withdrawable from block #${r.withdrawable_from}.`);
      loadMoney();
    } catch (err) {
      if (err.name !== 'AbortError') note(`Closing the lane failed: ${err.message}`, true);
      button.disabled = false;
    }
  }

  function note(msg, bad) {
    walletNote.className = `small ${bad ? 'error' : 'muted'}`;
    walletNote.textContent = msg;
  }

  async function refresh() {
    await Promise.all([loadEarnings(), loadStatus(), loadMoney()]);
    if (!signal.aborted) timer = setTimeout(refresh, REFRESH_MS);
  }
  refresh();

  return () => {
    ctl.abort();
    clearTimeout(timer);
    ro.disconnect();
    scheme.removeEventListener('change', recolour);
    if (chart) chart.destroy();
  };
}
