// One video: play it through the node's HLS gateway, show what this node verified and paid, tip the creator.
import Hls from 'hls.js/light';
import { get, post } from '../api.js';
import { h, fill, setText } from '../dom.js';
import { formatBytes, formatDuration, formatInt, formatRenditions, formatUnit, parseUnit, shortAccount } from '../format.js';

export default function videoPage(main, [cid]) {
  document.title = 'Video · Ferry';
  const ctl = new AbortController();
  const { signal } = ctl;
  let hls = null;
  let poll = null;
  let gone = false;

  // --- layout -------------------------------------------------------------------------------------------------
  const title = h('h1', { class: 'video-title' }, 'Loading…');
  const byline = h('p', { class: 'muted byline' });
  const player = h('video', { controls: true, playsInline: true, autoplay: true, preload: 'auto', 'aria-label': 'Video player' });
  player.muted = true; // muted, so that the browser lets it start on its own
  const mediaError = h('div', { class: 'error-box', role: 'alert', dataset: { testid: 'media-error' }, hidden: true });
  const quality = h('select', { id: 'quality', disabled: true }, h('option', { value: '-1' }, 'Auto'));
  const playing = h('span', { class: 'muted', 'aria-live': 'polite' });
  // Playback spends money (the node pays relays for what it verifies), so it starts only when the viewer asks:
  // a link from another site opens this page but cannot make the node pay.
  const startButton = h('button', { type: 'button', class: 'btn primary start' }, 'Play');
  const startNote = h('span', { class: 'muted small' }, 'This node pays the relays for every byte it verifies.');

  const verified = h('strong', { dataset: { testid: 'bytes-verified' } }, '—');
  const receipts = h('strong', { dataset: { testid: 'receipts' } }, '—');
  const relaysBody = h('tbody');
  const relaysNote = h('p', { class: 'muted small' });

  const tipInput = h('input', { id: 'tip-amount', name: 'amount', value: '0.5', inputMode: 'decimal', autocomplete: 'off', size: 8, required: true });
  const tipButton = h('button', { type: 'submit', class: 'btn primary' }, 'Tip');
  const tipResult = h('p', { class: 'tip-result', role: 'status', dataset: { testid: 'tip-result' } });
  const details = h('dl', { class: 'details' });

  fill(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Catalogue')),
    title,
    byline,
    h(
      'div',
      { class: 'watch' },
      h(
        'div',
        { class: 'watch-main' },
        h('div', { class: 'player' }, player),
        h('div', { class: 'player-bar start-bar' }, startButton, startNote),
        mediaError,
        h('div', { class: 'player-bar' }, h('label', { for: 'quality' }, 'Quality'), quality, playing),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'live-h' },
          h('h2', { id: 'live-h' }, 'This playback'),
          h(
            'div',
            { class: 'figures' },
            h('div', { class: 'figure' }, h('span', { class: 'label' }, 'Bytes verified'), verified),
            h('div', { class: 'figure' }, h('span', { class: 'label' }, 'Receipts signed'), receipts),
          ),
          h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              null,
              h('caption', null, 'Relays paid for this video'),
              h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Relay'), h('th', { scope: 'col', class: 'num' }, 'Bytes'), h('th', { scope: 'col', class: 'num' }, 'Paid (UNIT)'))),
              relaysBody,
            ),
          ),
          relaysNote,
        ),
      ),
      h(
        'aside',
        { class: 'watch-side' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'tip-h' },
          h('h2', { id: 'tip-h' }, 'Tip the creator'),
          h(
            'form',
            { class: 'tip', onsubmit: tip },
            h('label', { for: 'tip-amount' }, 'Amount (UNIT)'),
            h('div', { class: 'row' }, tipInput, tipButton),
          ),
          tipResult,
        ),
        h('section', { class: 'panel', 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'), details),
      ),
    ),
  );

  // --- details ------------------------------------------------------------------------------------------------
  get(`/api/videos/${encodeURIComponent(cid)}`, { signal })
    .then((v) => {
      document.title = `${v.title || 'Video'} · Ferry`;
      title.textContent = v.title || '(untitled)';
      fill(
        byline,
        h('span', { title: v.creator }, `by ${shortAccount(v.creator)}`),
        ` · ${formatDuration(v.duration_seconds)} · ${formatBytes(v.size_bytes)}`,
        v.held ? [' · ', h('span', { class: 'badge' }, 'held here')] : null,
      );
      fill(
        details,
        h('dt', null, 'Content id'), h('dd', null, h('code', { class: 'id' }, v.cid)),
        h('dt', null, 'Creator'), h('dd', null, h('code', { class: 'id' }, v.creator)),
        h('dt', null, 'Renditions'), h('dd', null, formatRenditions(v.renditions) || '—'),
        h('dt', null, 'Providers'),
        h('dd', null, v.providers && v.providers.length ? h('ul', { class: 'plain' }, v.providers.map((p) => h('li', null, h('code', { class: 'id' }, p)))) : 'none known'),
      );
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      title.textContent = e.status === 404 ? 'Unknown video' : 'Video';
      fill(byline, h('span', { class: 'error' }, e.message));
    });

  // --- playback -----------------------------------------------------------------------------------------------
  function showError(msg, retry) {
    fill(mediaError, h('strong', null, 'Playback failed: '), msg, retry ? [' ', h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again')] : null);
    mediaError.hidden = false;
  }
  function clearError() {
    mediaError.hidden = true;
    mediaError.replaceChildren();
  }

  player.addEventListener('error', () => {
    const err = player.error;
    if (err) showError(err.message || `media error ${err.code}`);
  });

  function levelName(level, i) {
    if (level.name) return level.name;
    const m = /([^/]+)\/[^/]*\.m3u8/.exec(level.url || (level.uri ?? ''));
    if (m) return decodeURIComponent(m[1]);
    return level.height ? `${level.height}p` : `level ${i + 1}`;
  }

  function start(playlist) {
    if (Hls.isSupported()) {
      let mediaRecoveries = 0;
      hls = new Hls({ enableWorker: true, lowLatencyMode: false, backBufferLength: 30 });
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        const levels = data.levels.map((l, i) => ({ i, name: levelName(l, i), height: l.height || 0, bitrate: l.bitrate || 0 }));
        levels.sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
        fill(quality, h('option', { value: '-1' }, 'Auto'), levels.map((l) => h('option', { value: String(l.i) }, l.name)));
        quality.disabled = levels.length < 2;
        player.play().catch(() => {});
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        const l = hls.levels[data.level];
        if (l) setText(playing, `${hls.autoLevelEnabled ? 'Auto: ' : ''}playing ${levelName(l, data.level)}`);
      });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
          mediaRecoveries++;
          hls.recoverMediaError();
          return;
        }
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          showError(`the node could not deliver the video (${data.details}).`, () => {
            clearError();
            hls.startLoad();
          });
          return;
        }
        showError(`${data.details}${data.error && data.error.message ? `: ${data.error.message}` : ''}`);
        hls.destroy();
        hls = null;
      });
      hls.loadSource(playlist);
      hls.attachMedia(player);
    } else if (player.canPlayType('application/vnd.apple.mpegurl')) {
      player.src = playlist;
      setText(playing, 'The browser picks the quality');
      player.play().catch(() => {});
    } else {
      showError('this browser can play neither HLS nor Media Source Extensions.');
    }
  }

  quality.addEventListener('change', () => {
    if (!hls) return;
    hls.currentLevel = Number(quality.value);
    if (quality.value === '-1') setText(playing, 'Auto');
  });

  startButton.addEventListener('click', () => {
    startButton.disabled = true;
    post(`/api/videos/${encodeURIComponent(cid)}/play`, undefined, { signal })
      .then((r) => {
        if (gone) return;
        startButton.closest('.start-bar').hidden = true;
        start(r.playlist);
      })
      .catch((e) => {
        startButton.disabled = false;
        if (e.name !== 'AbortError') showError(e.message);
      });
  });

  // --- live figures -------------------------------------------------------------------------------------------
  async function refresh() {
    try {
      const p = await get(`/api/videos/${encodeURIComponent(cid)}/playback`, { signal });
      setText(verified, formatBytes(p.bytes_verified));
      verified.title = `${formatInt(p.bytes_verified)} bytes`;
      setText(receipts, formatInt(p.receipts));
      const relays = p.relays || [];
      fill(
        relaysBody,
        relays.length
          ? relays.map((r) =>
              h('tr', null,
                h('td', null, h('code', { title: r.relay }, shortAccount(r.relay))),
                h('td', { class: 'num' }, formatBytes(r.bytes)),
                h('td', { class: 'num', title: `${r.paid} units` }, formatUnit(r.paid)),
              ))
          : h('tr', null, h('td', { colspan: 3, class: 'muted' }, 'No relay paid yet.')),
      );
      setText(relaysNote, '');
    } catch (e) {
      if (e.name !== 'AbortError') setText(relaysNote, `Could not read the playback figures: ${e.message}`);
    }
  }
  refresh();
  poll = setInterval(refresh, 1000);

  // --- tip ----------------------------------------------------------------------------------------------------
  async function tip(e) {
    e.preventDefault();
    let amount;
    try {
      amount = parseUnit(tipInput.value);
    } catch (err) {
      tipResult.className = 'tip-result error';
      tipResult.textContent = err.message;
      tipInput.focus();
      return;
    }
    tipButton.disabled = true;
    tipResult.className = 'tip-result muted';
    tipResult.textContent = `Sending ${formatUnit(amount.toString())} UNIT…`;
    try {
      const r = await post(`/api/videos/${encodeURIComponent(cid)}/tip`, { amount: amount.toString() }, { signal });
      tipResult.className = 'tip-result ok';
      fill(tipResult, `Tip landed in block #${r.block_number}`, h('br'), h('code', { class: 'id small', title: 'Block hash' }, r.block_hash));
    } catch (err) {
      if (err.name === 'AbortError') return;
      tipResult.className = 'tip-result error';
      tipResult.textContent = `The tip failed: ${err.message}`;
    } finally {
      tipButton.disabled = false;
    }
  }

  return () => {
    gone = true;
    clearInterval(poll);
    ctl.abort();
    if (hls) hls.destroy();
    player.pause();
    player.removeAttribute('src');
    player.load();
  };
}
