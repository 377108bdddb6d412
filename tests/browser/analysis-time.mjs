// A benchmark, not a test: how long the page's analysis takes, phase by phase (from the worker's
// progress messages), after a few progress points of training. Serves dist/ (or $DIST);
// Q=/?model=... picks the page's settings (default: the CNN; add &workers=1 for the analysis in
// the training worker alone). A phase's line is the time up to its last progress message: the
// sliding window's test pass, which follows its last retraining, shows under the next layer's
// zero rank; on several helper workers the phases overlap, and only the total means much.
// `node tests/browser/analysis-time.mjs` (docs/performance.md, In the browser).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(process.env.DIST || path.join(here, '../../dist'));
const server = await serve([['/', dist]], 0, '127.0.0.1', {});
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await launch();
const page = await (await browser.newContext()).newPage();
page.on('console', m => console.log('console:', m.text()));
await page.goto(base + (process.env.Q || '/?model=cnn-relu&layer=2&tracked=200&every=5'));
await page.waitForSelector('.status[data-phase="ready"]', { timeout: 90000 });
await page.click('#train');
await page.waitForFunction(() => window.hn?.points?.length > 5, null, { timeout: 300000, polling: 250 });
await page.click('#pause');
await page.waitForSelector('.status[data-phase="paused"]', { timeout: 120000 });
await page.evaluate(() => { window.__prog = []; const t0 = performance.now(); window.__t0 = t0;
  const tick = () => { const p = window.hn?.analysis_progress; const last = window.__prog.at(-1);
    if (p && (!last || last.done !== p.done)) window.__prog.push({ t: performance.now() - t0, done: p.done, what: p.what });
    if (!window.hn?.analysis) setTimeout(tick, 20); else window.__prog.push({ t: performance.now() - t0, done: -1, what: 'figures' }); };
  tick(); });
await page.click('#analyze');
await page.waitForFunction(() => window.hn?.analysis, null, { timeout: 1200000, polling: 500 });
const prog = await page.evaluate(() => window.__prog);
let prev = 0, prevWhat = 'start'; const acc = {};
for (const p of prog) { const key = p.what; acc[key] = (acc[key] || 0) + (p.t - prev); prev = p.t; }
for (const [k, v] of Object.entries(acc)) console.log(`${(v / 1000).toFixed(1)} s  ${k}`);
const analysis = await page.evaluate(() => window.hn.analysis);
console.log(`total ${(prev / 1000).toFixed(1)} s (the worker's own count: ${analysis.seconds.toFixed(1)} s of experiments on ${analysis.workers} helper workers)`);
await browser.close(); server.close();
