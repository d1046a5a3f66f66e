// Ferry's browser front end: the token, the hash router and the header.
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { takeTokenFromUrl, token, onUnauthorized, get } from './api.js';
import { h, fill } from './dom.js';
import catalogue from './pages/catalogue.js';
import video from './pages/video.js';
import creator from './pages/creator.js';
import operator from './pages/operator.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');

function showTokenBanner() {
  fill(
    banner,
    h('strong', null, 'This page has no valid token: '),
    'open the address ',
    h('code', null, 'ferry relay'),
    ' printed (it ends in ',
    h('code', null, '#token=…'),
    '). Pages that only show things work without it; playing, tipping, publishing and moving money need it.',
  );
  banner.hidden = false;
}

function takeToken() {
  if (takeTokenFromUrl()) {
    banner.hidden = true;
    banner.replaceChildren();
  }
}

/** Route table: [pattern, page name, render(main, params) -> cleanup]. */
const routes = [
  [/^\/?$/, 'catalogue', catalogue],
  [/^\/video\/([^/?]+)$/, 'catalogue', video],
  [/^\/creator$/, 'creator', creator],
  [/^\/operator$/, 'operator', operator],
];

let cleanup = null;

function route() {
  if (/token=/.test(location.hash)) takeToken();
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  const found = routes.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('nav a[data-route]')) {
    if (found && a.dataset.route === found[1]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  if (!found) {
    document.title = 'Not found · Ferry';
    fill(main, h('h1', null, 'Not found'), h('p', null, 'There is no such page. ', h('a', { href: '#/' }, 'Back to the catalogue')));
    return;
  }
  const params = found[0].exec(path).slice(1).map(decodeURIComponent);
  cleanup = found[2](main, params, new URLSearchParams(qs || '')) || null;
  window.scrollTo(0, 0);
}

/** The small node-state dot in the header: is the node up, is its chain connected. */
async function headerState() {
  const el = document.getElementById('node-state');
  try {
    const s = await get('/api/status');
    const ok = s.chain && s.chain.connected;
    el.className = `node-state ${ok ? 'ok' : 'warn'}`;
    el.textContent = ok ? `chain #${s.chain.finalized ?? '—'}` : 'chain offline';
    el.title = ok ? `Connected to ${s.chain.url || 'the chain'}` : (s.chain && s.chain.error) || 'Not connected to the chain';
  } catch (e) {
    el.className = 'node-state bad';
    el.textContent = 'node offline';
    el.title = e.message;
  }
}

takeToken();
onUnauthorized(showTokenBanner);
if (!token()) showTokenBanner();
window.addEventListener('hashchange', route);
// The skip link focuses the content without going through the hash router (which would read #main as a page).
document.querySelector('a.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main')?.focus();
});
route();
headerState();
setInterval(headerState, 5000);
