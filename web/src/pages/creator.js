// The creator's page: publish a video file through this node, and see what each of its videos earned.
import { get, upload } from '../api.js';
import { h, fill, setText } from '../dom.js';
import { formatBytes, formatUnit, shortId } from '../format.js';

const STATES = {
  queued: 'Waiting for the upload before it',
  transcoding: 'Transcoding',
  registering: 'Registering on the chain',
  done: 'Done',
  failed: 'Failed',
};

export default function creator(main) {
  document.title = 'Creator · Ferry';
  const ctl = new AbortController();
  const { signal } = ctl;
  let jobTimer = null;
  let currentUpload = null;

  const file = h('input', { id: 'pub-file', name: 'file', type: 'file', accept: 'video/*', required: true });
  const titleInput = h('input', { id: 'pub-title', name: 'title', type: 'text', required: true, maxLength: 200, autocomplete: 'off' });
  const share = h('input', { id: 'pub-share', name: 'share', type: 'number', min: '0', max: '100', step: '0.01', value: '20', required: true, inputMode: 'decimal' });
  const publish = h('button', { type: 'submit', class: 'btn primary' }, 'Publish');
  const cancel = h('button', { type: 'button', class: 'btn', hidden: true }, 'Stop upload');

  const upBar = h('progress', { id: 'pub-upload', max: 1, value: 0 });
  const upText = h('span', { class: 'muted small' }, 'waiting');
  const procBar = h('progress', { id: 'pub-processing', max: 1, value: 0 });
  const procText = h('span', { class: 'muted small' }, 'waiting');
  const progress = h(
    'div',
    { class: 'phases', hidden: true },
    h('div', { class: 'phase' }, h('label', { for: 'pub-upload' }, '1. Upload'), upBar, upText),
    h('div', { class: 'phase' }, h('label', { for: 'pub-processing' }, '2. Processing'), procBar, procText),
  );
  const result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite' });

  const videosBody = h('tbody');
  const videosNote = h('p', { class: 'muted small' });
  const account = h('p', { class: 'muted small account' });

  file.addEventListener('change', () => {
    const f = file.files[0];
    if (f && !titleInput.value.trim()) titleInput.value = f.name.replace(/\.[^.]+$/, '').replace(/[_-]+/g, ' ');
  });

  fill(
    main,
    h('h1', null, 'Creator'),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'pub-h' },
      h('h2', { id: 'pub-h' }, 'Publish a video'),
      h('p', { class: 'muted small' }, 'The node transcodes the file into HLS renditions, registers it on the chain under this node’s account and serves it.'),
      h(
        'form',
        { class: 'publish', onsubmit: submit },
        h('div', { class: 'field' }, h('label', { for: 'pub-file' }, 'Video file'), file),
        h('div', { class: 'field' }, h('label', { for: 'pub-title' }, 'Title'), titleInput),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'pub-share' }, 'Creator share (%)'),
          share,
          h('span', { class: 'muted small', id: 'pub-share-help' }, 'Your part of every payment a relay receives for this video.'),
        ),
        h('div', { class: 'row' }, publish, cancel),
      ),
      progress,
      result,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'vids-h' },
      h('h2', { id: 'vids-h' }, 'Your videos'),
      account,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          null,
          h('thead', null,
            h('tr', null,
              h('th', { scope: 'col' }, 'Title'),
              h('th', { scope: 'col', class: 'num' }, 'Served'),
              h('th', { scope: 'col', class: 'num' }, 'Share earned (UNIT)'),
              h('th', { scope: 'col', class: 'num' }, 'Tips (UNIT)'),
            )),
          videosBody,
        ),
      ),
      videosNote,
    ),
  );
  share.setAttribute('aria-describedby', 'pub-share-help');

  async function loadVideos() {
    try {
      const c = await get('/api/creator', { signal });
      account.textContent = `Account ${c.account}`;
      const vids = c.videos || [];
      fill(
        videosBody,
        vids.length
          ? vids.map((v) =>
              h('tr', null,
                h('td', null, h('a', { href: `#/video/${encodeURIComponent(v.cid)}` }, v.title || shortId(v.cid))),
                h('td', { class: 'num' }, formatBytes(v.bytes)),
                h('td', { class: 'num', title: `${v.share} units` }, formatUnit(v.share)),
                h('td', { class: 'num', title: `${v.tips} units` }, formatUnit(v.tips)),
              ))
          : h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No videos published from this node yet.')),
      );
      setText(videosNote, '');
    } catch (e) {
      if (e.name !== 'AbortError') setText(videosNote, `Could not load your videos: ${e.message}`);
    }
  }

  function fail(msg) {
    result.className = 'result error-box';
    fill(result, h('strong', null, 'Publishing failed: '), msg);
  }

  async function submit(e) {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return fail('choose a video file first.');
    const pct = Number(share.value);
    if (!Number.isFinite(pct) || pct < 0 || pct > 100) return fail('the share must be between 0 and 100 %.');
    const title = titleInput.value.trim() || f.name;
    const bps = Math.round(pct * 100);

    publish.disabled = true;
    file.disabled = true;
    cancel.hidden = false;
    progress.hidden = false;
    result.className = 'result';
    result.replaceChildren();
    upBar.value = 0;
    procBar.value = 0;
    setText(upText, `0 of ${formatBytes(f.size)}`);
    setText(procText, 'waiting for the upload');

    const path = `/api/publish?${new URLSearchParams({ title, share_bps: String(bps) })}`;
    currentUpload = upload(path, f, (loaded, total) => {
      upBar.value = total ? loaded / total : 0;
      setText(upText, `${formatBytes(loaded)} of ${formatBytes(total)}`);
    });
    cancel.onclick = () => currentUpload && currentUpload.abort();
    try {
      const { job } = await currentUpload.promise;
      upBar.value = 1;
      setText(upText, `${formatBytes(f.size)} uploaded`);
      cancel.hidden = true;
      await follow(job);
    } catch (err) {
      if (err.name !== 'AbortError') fail(err.message);
    } finally {
      currentUpload = null;
      cancel.hidden = true;
      publish.disabled = false;
      file.disabled = false;
    }
  }

  /** Poll the job every 500 ms until it is done or failed. */
  function follow(job) {
    return new Promise((resolve, reject) => {
      let misses = 0;
      const tick = async () => {
        let s;
        try {
          s = await get(`/api/publish/${encodeURIComponent(job)}`, { signal });
        } catch (err) {
          if (err.name === 'AbortError') return reject(err);
          if (++misses >= 10) return reject(err);
          jobTimer = setTimeout(tick, 500);
          return;
        }
        misses = 0;
        const p = Math.max(0, Math.min(1, Number(s.progress) || 0));
        procBar.value = s.state === 'done' ? 1 : p;
        setText(procText, `${STATES[s.state] || s.state}${s.state === 'done' || s.state === 'failed' ? '' : ` · ${Math.round(p * 100)} %`}`);
        if (s.state === 'failed') return reject(new Error(s.error || 'the node gave no reason'));
        if (s.state === 'done') {
          result.className = 'result ok-box';
          fill(
            result,
            h('strong', null, 'Published. '),
            'Content id: ',
            h('code', { class: 'id', dataset: { testid: 'published-cid' } }, s.cid || '—'),
            ' ',
            s.cid ? h('a', { href: `#/video/${encodeURIComponent(s.cid)}` }, 'Watch it') : null,
          );
          loadVideos();
          return resolve();
        }
        jobTimer = setTimeout(tick, 500);
      };
      tick();
    });
  }

  loadVideos();
  return () => {
    ctl.abort();
    clearTimeout(jobTimer);
    if (currentUpload) currentUpload.abort();
  };
}
