// The catalogue: search the videos the node knows of, page through them, open one.
import { get } from '../api.js';
import { h, fill, debounce } from '../dom.js';
import { formatBytes, formatDuration, formatRenditions, shortAccount } from '../format.js';

const LIMIT = 20;

export default function catalogue(main, _params, query) {
  document.title = 'Catalogue · Ferry';
  let q = query.get('q') || '';
  let offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  let ctl = null;

  const input = h('input', {
    id: 'search',
    type: 'search',
    name: 'q',
    value: q,
    placeholder: 'Title or creator',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const summary = h('p', { class: 'muted summary', 'aria-live': 'polite' });
  const list = h('ul', { class: 'cards', 'aria-label': 'Videos' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of results', hidden: true });

  fill(
    main,
    h('h1', null, 'Catalogue'),
    h(
      'form',
      { class: 'search', role: 'search', onsubmit: (e) => (e.preventDefault(), search(0)) },
      h('label', { for: 'search' }, 'Search videos'),
      input,
    ),
    summary,
    list,
    pager,
  );

  function remember() {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (offset) params.set('offset', offset);
    const s = params.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}#/${s ? `?${s}` : ''}`);
  }

  async function load() {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    list.setAttribute('aria-busy', 'true');
    try {
      const page = await get('/api/videos', { query: { q, offset, limit: LIMIT }, signal: ctl.signal });
      show(page);
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(list, h('li', { class: 'error-box' }, `Could not load the catalogue: ${e.message}`));
      summary.textContent = '';
      pager.hidden = true;
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  function show(page) {
    const videos = page.videos || [];
    const total = page.total ?? videos.length;
    if (!videos.length) {
      summary.textContent = '';
      fill(
        list,
        h(
          'li',
          { class: 'empty' },
          q
            ? h('p', null, `No video matches “${q}”.`)
            : h('p', null, 'No videos yet. ', h('a', { href: '#/creator' }, 'Publish one'), ' or wait for the network to tell this node of some.'),
        ),
      );
    } else {
      const first = (page.offset ?? offset) + 1;
      summary.textContent = `${first}–${first + videos.length - 1} of ${total} video${total === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}`;
      fill(list, videos.map(card));
    }
    const limit = page.limit || LIMIT;
    pager.hidden = total <= limit;
    fill(
      pager,
      h('button', { type: 'button', class: 'btn', disabled: offset <= 0, onclick: () => search(Math.max(0, offset - limit)) }, '← Previous'),
      h('span', { class: 'muted' }, `Page ${Math.floor(offset / limit) + 1} of ${Math.max(1, Math.ceil(total / limit))}`),
      h('button', { type: 'button', class: 'btn', disabled: offset + limit >= total, onclick: () => search(offset + limit) }, 'Next →'),
    );
  }

  function search(newOffset) {
    q = input.value.trim();
    offset = newOffset;
    remember();
    load();
  }

  input.addEventListener('input', debounce(() => search(0), 250));
  load();
  return () => ctl && ctl.abort();
}

function card(v) {
  const title = v.title || '(untitled)';
  return h(
    'li',
    null,
    h(
      'a',
      { class: 'card', href: `#/video/${encodeURIComponent(v.cid)}`, dataset: { testid: 'video-card', cid: v.cid } },
      h('span', { class: 'thumb', 'aria-hidden': 'true', style: `--hue: ${hue(v.cid)}` }, h('span', { class: 'dur' }, formatDuration(v.duration_seconds))),
      h('span', { class: 'card-body' },
        h('span', { class: 'card-title' }, title),
        h('span', { class: 'muted', title: v.creator }, `by ${shortAccount(v.creator)}`),
        h('span', { class: 'meta' },
          h('span', { class: 'sr' }, `Duration ${formatDuration(v.duration_seconds)}`),
          formatRenditions(v.renditions) && h('span', null, formatRenditions(v.renditions)),
          h('span', null, formatBytes(v.size_bytes)),
          v.held ? h('span', { class: 'badge' }, 'held here') : null,
          !v.held && v.providers && v.providers.length ? h('span', { class: 'muted' }, `${v.providers.length} provider${v.providers.length === 1 ? '' : 's'}`) : null,
        ),
      ),
    ),
  );
}

/** A stable hue from the content id, so each card's placeholder differs. */
function hue(cid) {
  let n = 0;
  for (const c of String(cid).slice(0, 8)) n = (n * 31 + c.charCodeAt(0)) % 360;
  return n;
}
