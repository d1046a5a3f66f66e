// Drives Ferry's web app in headless Chromium against a running node, the way a person would:
// search the catalogue, watch a video, tip, publish a file, and watch the operator's earnings move.
//
//   FERRY_APP_URL  the address `ferry relay` printed (http://127.0.0.1:PORT/#token=…)
//   FERRY_OPERATOR_URL  the app of the node whose operator page step 5 watches (default: FERRY_APP_URL)
//   FERRY_SEARCH   a word of the title of a video the catalogue holds
//   FERRY_UPLOAD   path of a short video file to publish
//   FERRY_SHOTS    a directory for screenshots (default: the current directory)
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// Exits 0 when every step held, 1 at the first that did not, with a line saying which and why.
import { createRequire } from 'node:module';
import { mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const APP_URL = need('FERRY_APP_URL');
const OPERATOR_URL = process.env.FERRY_OPERATOR_URL || APP_URL;
const SEARCH = need('FERRY_SEARCH');
const UPLOAD = resolve(need('FERRY_UPLOAD'));
const SHOTS = resolve(process.env.FERRY_SHOTS || '.');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`browser test: set ${name}`);
    process.exit(1);
  }
  return v;
}

class StepFailed extends Error {}
let step = 'start';
const problems = []; // requests to other hosts and uncaught page errors, from any page
const started = Date.now();

function fail(msg) {
  throw new StepFailed(msg);
}
function passed(msg) {
  console.log(`ok  ${step}${msg ? `: ${msg}` : ''} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
function checkProblems() {
  if (problems.length) fail(problems.join('; '));
}

/** Poll `probe` until it returns a truthy value; fail with `what` after `ms`. */
async function until(what, ms, probe, every = 250) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    checkProblems();
    last = await probe();
    if (last && last.done !== false) return last;
    if (Date.now() > end) fail(`${what} within ${ms / 1000} s${last && last.why ? ` (${last.why})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function watch(page, label) {
  page.on('request', (req) => {
    let url;
    try {
      url = new URL(req.url());
    } catch {
      return;
    }
    if (!/^(https?|wss?):$/.test(url.protocol)) return; // data:, blob: stay in the page
    if (!LOCAL_HOSTS.has(url.hostname)) problems.push(`${label} page requested another host: ${req.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label} page threw: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    console.log(`    (${label} console) ${msg.text()}`);
    // The node's Content-Security-Policy refused something the page tried to load or run.
    if (/^Refused to /.test(msg.text())) problems.push(`${label} page broke the content security policy: ${msg.text()}`);
  });
}

if (!existsSync(CHROMIUM)) {
  console.error(`browser test: no browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(1);
}
if (!existsSync(UPLOAD)) {
  console.error(`browser test: FERRY_UPLOAD ${UPLOAD} does not exist`);
  process.exit(1);
}
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});

let page;
let code = 0;
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  page = await context.newPage();
  watch(page, 'desktop');
  const shot = (name) => page.screenshot({ path: join(SHOTS, name) });

  // 0. The operator's dashboard opens first, in its own tab, before this playback earns anything: step 5 then
  // sees the settled figure move from what it showed here.
  step = '0 operator dashboard';
  const opContext = await browser.newContext({ viewport: DESKTOP });
  const opPage = await opContext.newPage();
  watch(opPage, 'operator');
  // Opening the address with its #token= keeps that node's token (a different port is a different origin).
  await opPage.goto(OPERATOR_URL, { waitUntil: 'load' });
  await opPage.goto(new URL('#/operator', OPERATOR_URL.split('#')[0]).href);
  const settled = opPage.locator('[data-testid=earnings-settled]');
  const read = async () => {
    const raw = await settled.getAttribute('data-value');
    return { raw, text: (await settled.innerText()).trim() };
  };
  const first = await until('the settled figure did not load', 20000, async () => {
    const r = await read().catch(() => null);
    return r && r.raw ? r : { done: false, why: 'not shown yet' };
  });
  passed(`settled ${first.text}`);

  // 1. The catalogue: search, find the video, open it.
  step = '1 catalogue';
  await page.goto(APP_URL, { waitUntil: 'load' });
  if (/token=/.test(page.url())) fail(`the token stayed in the address: ${page.url()}`);
  const search = page.getByLabel('Search videos');
  await search.waitFor({ timeout: 15000 }).catch(() => fail('no search box labelled "Search videos"'));
  await page.locator('[data-testid=video-card], .empty, .error-box').first().waitFor({ timeout: 15000 })
    .catch(() => fail('the catalogue showed neither videos nor an empty state'));
  await shot('catalogue.png');
  await search.fill(SEARCH);
  const card = page.locator('[data-testid=video-card]', { has: page.locator('.card-title', { hasText: SEARCH }) }).first();
  await card.waitFor({ timeout: 20000 }).catch(async () => {
    const seen = await page.locator('main').innerText();
    fail(`no card whose title contains "${SEARCH}"; the page shows: ${seen.slice(0, 300).replace(/\s+/g, ' ')}`);
  });
  const title = (await card.locator('.card-title').innerText()).trim();

  const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  const phonePage = await phone.newPage();
  watch(phonePage, 'phone');
  await phonePage.goto(APP_URL, { waitUntil: 'load' });
  await phonePage.locator('[data-testid=video-card], .empty').first().waitFor({ timeout: 15000 }).catch(() => fail('the phone page showed no catalogue'));
  await phonePage.screenshot({ path: join(SHOTS, 'catalogue-phone.png') });
  await phone.close();

  await card.click();
  await page.waitForURL(/#\/video\//, { timeout: 10000 }).catch(() => fail('clicking the card did not open the video page'));
  checkProblems();
  passed(`opened "${title}"`);

  // 2. The video plays past 5 s without a media error, once asked to (opening the page alone spends nothing).
  step = '2 playback';
  await page.getByRole('button', { name: 'Play', exact: true }).click();
  const played = await until('the video did not play past 5 s', 60000, () =>
    page.evaluate(() => {
      const v = document.querySelector('video');
      const shown = document.querySelector('[data-testid=media-error]:not([hidden])');
      if (!v) return { done: false, why: 'no <video> yet' };
      return {
        done: v.currentTime > 5 || !!v.error || !!shown,
        t: v.currentTime,
        error: v.error ? `${v.error.code} ${v.error.message}` : shown ? shown.textContent.trim() : null,
        why: `at ${v.currentTime.toFixed(1)} s, readyState ${v.readyState}`,
      };
    }),
  );
  if (played.error) fail(`media error: ${played.error}`);
  await shot('video.png');
  passed(`currentTime ${played.t.toFixed(2)} s`);

  // 3. Tip the default amount; the page reports the block.
  step = '3 tip';
  await page.getByRole('button', { name: 'Tip', exact: true }).click();
  const tip = await until('no "block #N" in the tip result', 60000, async () => {
    const text = (await page.locator('[data-testid=tip-result]').innerText()).trim();
    if (/fail|error|token/i.test(text)) fail(`the tip failed: ${text}`);
    const m = /block #(\d+)/.exec(text);
    return m ? { block: m[1] } : { done: false, why: `it says "${text}"` };
  }, 500);
  console.log(`tip block ${tip.block}`);
  passed();

  // 4. Publish a file from the creator page.
  step = '4 publish';
  await page.goto(new URL('#/creator', APP_URL.split('#')[0]).href);
  await page.getByLabel('Video file').setInputFiles(UPLOAD);
  await page.getByLabel('Title', { exact: true }).fill('Uploaded in the browser test');
  await page.getByRole('button', { name: 'Publish' }).click();
  const cid = await until('no content id', 180000, async () => {
    const err = page.locator('.result.error-box');
    if (await err.count()) fail((await err.innerText()).trim());
    const el = page.locator('[data-testid=published-cid]');
    if (!(await el.count())) return { done: false, why: (await page.locator('.phases').innerText().catch(() => '')).replace(/\s+/g, ' ') };
    const m = /\b(?:0x)?[0-9a-f]{64}\b/i.exec(await el.innerText());
    return m ? { cid: m[0] } : { done: false, why: `published-cid says "${await el.innerText()}"` };
  }, 500);
  console.log(`published ${cid.cid}`);
  await shot('creator.png');
  passed();

  // 5. The operator's settled earnings, on the dashboard opened at the start, moved after a settlement.
  step = '5 operator';
  await opPage.bringToFront();
  const moved = await until(`the settled figure stayed at ${first.text}`, 120000, async () => {
    const r = await read();
    return r.raw && r.raw !== first.raw ? r : { done: false };
  }, 1000);
  await opPage.waitForTimeout(2500); // let the chart take the new point
  await opPage.screenshot({ path: join(SHOTS, 'operator.png') });
  console.log(`settled ${first.text} -> ${moved.text}`);
  checkProblems();
  passed();

  console.log(`browser test passed; screenshots in ${SHOTS}`);
} catch (e) {
  code = 1;
  const msg = e instanceof StepFailed ? e.message : e.stack || String(e);
  console.error(`FAILED at step ${step}: ${msg}`);
  if (problems.length && !(e instanceof StepFailed)) console.error(`also: ${problems.join('; ')}`);
  if (page) await page.screenshot({ path: join(SHOTS, 'failure.png') }).catch(() => {});
} finally {
  await browser.close().catch(() => {});
}
process.exit(code);
