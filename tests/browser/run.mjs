// Browser tests and the TF.js benchmark, in Debian's headless Chromium driven by playwright-core.
// Serves the trunk build (dist/, or $DIST) on a local port; writes screenshots, the exported
// results.json and bench.json to tests/artifacts/. Exit code 1 when any test fails.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';
import { serve } from '../../scripts/serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const dist = path.resolve(process.env.DIST || path.join(root, 'dist'));
const artifacts = path.join(root, 'tests/artifacts');
const trainer = process.env.TRAINER_BIN;
const only = process.env.ONLY ? process.env.ONLY.split(',') : null;
const BENCH_STEPS = Number(process.env.BENCH_STEPS || 60);
fs.mkdirSync(artifacts, { recursive: true });

const tfjsMounts = [
  ['/tfjs/', path.join(here, 'node_modules/@tensorflow/tfjs/dist/')],
  ['/tfjs-wasm/', path.join(here, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/')],
  ['/tfjs-bench.html', path.join(here, 'tfjs-bench.html')],
];
// Paths the server was asked for (tests that check what the page fetched clear it first).
const requested = [];
const server = await serve([...tfjsMounts, ['/', dist]], 0, '127.0.0.1', { log: p => requested.push(p) });
const base = `http://127.0.0.1:${server.address().port}`;

// Headless Chromium offers no WebGPU adapter here: this one tests the CPU path.
const browser = await launch();

function assert(cond, what) { if (!cond) throw new Error(what); }

async function open(url, { routes = [], width = 1400, height = 1000, within = browser } = {}) {
  const context = await within.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', e => consoleErrors.push(String(e)));
  page.on('response', r => { if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`); });
  for (const [pattern, handler] of routes) await page.route(pattern, handler);
  await page.addInitScript(() => {
    window.__longtasks = [];
    new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration }); })
      .observe({ type: 'longtask', buffered: true });
    // Long animation frames name the scripts behind a stall (for the failure message).
    window.__loaf = [];
    try {
      new PerformanceObserver(l => { for (const e of l.getEntries()) window.__loaf.push({ start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
        scripts: e.scripts.map(s => `${s.invoker} ${s.sourceFunctionName || ''} ${Math.round(s.duration)}ms`) }); })
        .observe({ type: 'long-animation-frame', buffered: true });
    } catch (_) { /* older Chromium */ }
  });
  await page.goto(base + url);
  return { page, context, consoleErrors };
}

const hn = (page, expr, timeout = 60_000) => page.waitForFunction(expr, null, { timeout, polling: 250 }).then(h => h.jsonValue());
const waitPhase = (page, phase, timeout = 90_000) => page.waitForSelector(`.status[data-phase="${phase}"]`, { timeout });
const errorsText = page => page.$eval('.errors', e => e.innerText).catch(() => '');
const sum = a => a.reduce((x, y) => x + y, 0);
// An analysis on a machine with several cores runs on helper workers, one per core.
async function assertPooled(page, analysis) {
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  assert(cores < 2 || analysis.workers >= 2, `${cores} cores, but the analysis ran on ${analysis.workers} helper workers`);
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const shared = {};

test('page loads with no console errors and names its backend', async () => {
  const { page, context, consoleErrors } = await open('/');
  await waitPhase(page, 'ready');
  const status = await page.$eval('.status', e => e.innerText);
  assert(/ndarray/.test(status), `backend not named: ${status}`);
  assert(/WebGPU/.test(status), `no WebGPU note: ${status}`);
  assert((await errorsText(page)) === '', 'error banner shown');
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

// The settings form keeps what was typed; one message (#settings-error) names the first bad
// field, and Train waits until it is fixed. The worker refuses the same settings sent around it.
const settingsMessage = page => page.$eval('#settings-error', e => (e.hidden ? '' : e.innerText.trim()));
const trainDisabled = page => page.$eval('#train', b => b.disabled);
// The page updates after the input event: wait for the message (the assert then says what came).
const settled = (page, pattern) => page.waitForFunction(src => new RegExp(src).test(document.querySelector('#settings-error').hidden ? '' : document.querySelector('#settings-error').innerText.trim()),
  pattern.source, { timeout: 5000, polling: 100 }).catch(() => {});
test('settings form: a bad value is named and disables Train until fixed; the worker refuses it too', async () => {
  const { page, context, consoleErrors } = await open('/');
  await waitPhase(page, 'ready');
  assert((await settingsMessage(page)) === '' && !(await trainDisabled(page)), 'the default settings are refused');
  await page.fill('#batch', '0');
  await settled(page, /^batch size/);
  let text = await settingsMessage(page);
  assert(/^batch size: 0 is out of range; allowed: 1 to 4096/.test(text), `batch 0: '${text}'`);
  assert(await trainDisabled(page), 'Train enabled with batch 0');
  assert((await page.getAttribute('#batch', 'aria-invalid')) === 'true', 'the batch field is not marked invalid');
  await page.fill('#batch', '64');
  await page.fill('#lr', 'abc');
  await settled(page, /^learning rate/);
  text = await settingsMessage(page);
  assert(/^learning rate: 'abc' is not a number/.test(text), `lr abc: '${text}'`);
  assert((await page.inputValue('#lr')) === 'abc', 'the typed text was not kept');
  assert(await trainDisabled(page), 'Train enabled with learning rate abc');
  // The URL holds the last valid settings meanwhile.
  let q = new URL(page.url()).searchParams;
  assert(q.get('batch') === '64' && q.get('lr') === '0.001', `URL while invalid: ${page.url()}`);
  await page.fill('#lr', '0.002');
  await settled(page, /^$/);
  assert((await page.$eval('#settings-error', e => e.textContent)) === '', 'the message stayed');
  assert(!(await trainDisabled(page)), 'Train still disabled after the fix');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('lr') === '0.002', null, { timeout: 5000, polling: 100 }).catch(() => {});
  q = new URL(page.url()).searchParams;
  assert(q.get('batch') === '64' && q.get('lr') === '0.002', `URL after the fix: ${page.url()}`);
  // Around the form (window.hnSend): the worker reports instead of dying...
  const start = settings => page.evaluate(s => window.hnSend(JSON.stringify({ type: 'start', view: { layer: 0, neuron: 0, recording: null },
    settings: { activation: 'relu', epochs: 1, batch_size: 128, learning_rate: 0.001, seed: 1, every_batches: 10, tracked_samples: 1000, ...s } })), settings);
  await start({ batch_size: 0 });
  await waitPhase(page, 'stopped', 30_000);
  text = await errorsText(page);
  assert(/batch size: 0 is out of range/.test(text), `worker on batch 0: '${text}'`);
  await page.evaluate(() => window.hnSend(JSON.stringify({ type: 'bench', steps: 0, batch_size: 128, recording: false })));
  await page.waitForFunction(() => (window.hn.errors || []).some(e => /bench steps: 0/.test(e)), null, { timeout: 30_000, polling: 250 });
  await page.evaluate(() => window.hnSend(JSON.stringify({ type: 'view', view: { layer: 7, neuron: 1e9, recording: 1e9 } })));
  // ...and still trains: Train (the form's valid settings) gets progress.
  await page.click('#train');
  await page.waitForFunction(() => (window.hn?.points?.length || 0) >= 1, null, { timeout: 120_000, polling: 250 });
  await page.evaluate(() => window.hnSend(JSON.stringify({ type: 'view', view: { layer: 7, neuron: 1e9, recording: 1e9 } })));
  await page.waitForFunction(() => (window.hn?.live?.live?.view?.layer) === 1, null, { timeout: 60_000, polling: 250 });
  assert(await page.evaluate(() => window.hn.points.at(-1).total_steps === Math.ceil(60000 / 64)), 'the run did not use the form\'s batch');
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('hostile URL settings load sanitized, with no console errors', async () => {
  const { page, context, consoleErrors } = await open('/?batch=0&lr=nan&epochs=999999&tracked=0');
  await waitPhase(page, 'ready');
  const shown = await page.evaluate(() => Object.fromEntries(['epochs', 'batch', 'lr', 'seed'].map(id => [id, document.getElementById(id).value])));
  assert(shown.epochs === '50' && shown.batch === '1' && shown.lr === '0.001' && shown.seed === '1', `form shows ${JSON.stringify(shown)}`);
  const q = new URL(page.url()).searchParams;
  assert(q.get('epochs') === '50' && q.get('batch') === '1' && q.get('lr') === '0.001' && q.get('tracked') === '10', `URL not sanitized: ${page.url()}`);
  assert((await settingsMessage(page)) === '' && !(await trainDisabled(page)), 'sanitized settings refused');
  assert((await errorsText(page)) === '', 'error banner shown');
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('first open: every live figure fills in for the default view and for shared links', async () => {
  // A new reader presses Train and looks down the page: the viewed neuron (the default, or the
  // link's) must be traced, so that figure 2 is never empty once training has recorded.
  for (const [url, layer, neuron] of [['/', 0, 0], ['/?layer=1&neuron=300', 1, 300], ['/?model=sigmoid&neuron=511', 0, 511]]) {
    const { page, context, consoleErrors } = await open(url);
    await waitPhase(page, 'ready');
    await page.click('#train');
    const live = await hn(page, () => window.hn?.live?.live?.recordings >= 2 && window.hn.points?.length > 0 && window.hn.live.live, 120_000);
    await page.click('#pause');
    const where = `${url}: `;
    assert(live.view.layer === layer && live.view.neuron === neuron, `${where}viewing layer ${live.view.layer} neuron ${live.view.neuron}`);
    assert(live.traced.includes(neuron), `${where}neuron ${neuron} not traced (${live.traced.slice(0, 8)}...)`);
    const counts = f => sum(f.figure.panels[0].histogram.counts);
    assert(counts(live.fig1) > 0 && counts(live.fig5) > 0, `${where}figures 1/5 empty`);
    assert(live.fig2 && live.fig2.figure.steps.length === live.recordings && live.fig2.figure.high.samples + live.fig2.figure.low.samples > 0, `${where}figure 2 empty`);
    assert(live.fig2.figure.neuron === neuron && live.fig2.figure.high.p50.some(Number.isFinite), `${where}figure 2 is not neuron ${neuron}'s`);
    assert(live.fig2_at && live.fig2_at.figure.panels.some(p => sum(p.histogram.counts) > 0), `${where}figure 2 at one moment empty`);
    assert(live.neuron_outer_fraction.length === live.layers[layer][1], `${where}neuron overview has ${live.neuron_outer_fraction.length} neurons`);
    const points = await page.evaluate(() => window.hn.points);
    assert(points.length > 0 && points.every(p => Number.isFinite(p.loss)), `${where}no loss points`);
    // Layer rotation beside the loss: every weighted layer, a cosine distance in [0, 1) that
    // training has moved off 0 by the last point.
    // (It rides on a point every two seconds and at each epoch's end.)
    const rot = points.map(p => p.rotation).filter(r => r.length > 0);
    assert(rot.length > 0 && rot.every(r => r.length === 3 && r.every(([, d]) => d >= 0 && d < 1)), `${where}rotation ${JSON.stringify(rot.slice(-1))}`);
    const last = rot[rot.length - 1];
    assert(JSON.stringify(last.map(([n]) => n)) === '["dense1","dense2","output"]' && last.some(([, d]) => d > 0), `${where}rotation not moving: ${JSON.stringify(last)}`);
    // Each traced neuron is one click away.
    const links = await page.$$eval('.traced .neuron-link', b => b.map(e => Number(e.innerText)));
    assert(links.length === live.traced.length && links[0] === neuron, `${where}traced links ${links.slice(0, 4)}`);
    const other = links[1];
    await page.click(`.traced .neuron-link >> nth=1`);
    await page.waitForFunction(n => window.hn.live.live.view.neuron === n && window.hn.live.live.fig2?.figure.neuron === n, other, { timeout: 30_000, polling: 250 });
    assert(consoleErrors.length === 0, `${where}console errors: ${consoleErrors.join(' | ')}`);
    await context.close();
  }
});

test('phone, keyboard, screen reader: 390x844 without sideways scrolling, every control reached by Tab, each chart summarized in words', async () => {
  const { page, context, consoleErrors } = await open('/', { width: 390, height: 844 });
  await waitPhase(page, 'ready');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the page is ${overflow}px wider than a 390px phone`);
  const rights = await page.$$eval('canvas.figure, fieldset, button', es => es.map(e => e.getBoundingClientRect().right));
  assert(rights.every(r => r <= 390), `something sticks out: ${Math.max(...rights)}px`);
  // Tab visits every visible, enabled control (buttons, inputs, selects, links).
  const controls = await page.$$eval('button, input, select, textarea, a[href]', es => es.filter(e => !e.disabled && e.offsetParent !== null).length);
  const reached = new Set();
  for (let i = 0; i < controls + 3; i++) {
    await page.keyboard.press('Tab');
    reached.add(await page.evaluate(() => { const e = document.activeElement; e.dataset.tabbed ??= String(Math.random()); return e.dataset.tabbed; }));
  }
  assert(reached.size >= controls, `Tab reached ${reached.size} of ${controls} controls`);
  // Every chart is an image with a summary in words before any data...
  const before = await page.$$eval('canvas.figure', cs => cs.map(c => [c.getAttribute('role'), c.getAttribute('aria-label') || '']));
  assert(before.length > 0 && before.every(([role, label]) => role === 'img' && label.length > 10), `chart labels ${JSON.stringify(before.slice(0, 3))}`);
  // ...and with its key numbers once training has recorded (started from the keyboard).
  await page.focus('#train');
  await page.keyboard.press('Enter');
  await hn(page, () => window.hn?.live?.live?.recordings >= 2, 120_000);
  await page.focus('#pause');
  await page.keyboard.press('Enter');
  const total = await hn(page, () => {
    const f = window.hn.live.live.fig1; const label = document.querySelector('section[data-figure="fig1"] canvas')?.getAttribute('aria-label') || '';
    const n = f && f.figure.panels[0].histogram.counts.reduce((a, b) => a + b, 0);
    return n > 0 && label.includes(`${f.figure.panels[0].label}: ${n} values`) && n;
  }, 60_000);
  const loss = await page.$eval('section[data-figure="loss"] canvas', c => c.getAttribute('aria-label'));
  assert(/points from/.test(loss) && /highest/.test(loss), `loss chart summary: ${loss}`);
  assert(total > 0 && consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('one epoch trains to >= 95% with live, consistent figures and no main-thread stalls', async () => {
  const { page, context, consoleErrors } = shared.main = await open('/?layer=1&epochs=1');
  await waitPhase(page, 'ready');
  const t0 = await page.evaluate(() => performance.now());
  await page.click('#train');
  const first = await hn(page, () => window.hn?.live?.live);
  // Pause holds training still; Resume carries on.
  await page.click('#pause');
  await waitPhase(page, 'paused', 30_000);
  const held = await page.evaluate(() => window.hn.points.length);
  await page.waitForTimeout(1500);
  assert((await page.evaluate(() => window.hn.points.length)) <= held + 1, 'training went on while paused');
  await page.click('#resume');
  await waitPhase(page, 'training', 30_000);
  // Look at a traced neuron so that figure 2 exists.
  const traced = first.traced[0];
  await page.fill('#neuron', String(traced));
  await page.dispatchEvent('#neuron', 'change');
  await page.waitForFunction(n => window.hn.live.live.view.neuron === n && window.hn.live.live.fig2, traced, { timeout: 60_000, polling: 250 });
  const trained = await hn(page, () => window.hn?.trained, 15 * 60_000);
  const t1 = await page.evaluate(() => performance.now());
  // The final live update follows the training end.
  await page.waitForTimeout(500);
  const { points, live, longtasks, loaf, drawMs } = await page.evaluate(() => ({ points: window.hn.points, live: window.hn.live.live, longtasks: window.__longtasks, loaf: window.__loaf, drawMs: window.hn.draw_ms }));
  const last = points[points.length - 1];
  assert(last.step >= 50, `only ${last.step} steps`);
  const early = points.slice(0, 2).map(p => p.loss), late = points.slice(-3).map(p => p.loss);
  assert(sum(early) / early.length > 2 * sum(late) / late.length, `loss did not fall: ${early} -> ${late}`);
  assert(trained.test_accuracy >= 0.95, `test accuracy ${trained.test_accuracy} after one epoch`);
  const [layer, neurons] = live.layers[live.view.layer];
  assert(layer === 'dense2-relu', `viewing ${layer}`);
  const fig5 = live.fig5.figure.panels[0].histogram.counts;
  assert(sum(fig5) === live.defined_pairs, `fig5 sums to ${sum(fig5)}, defined pairs ${live.defined_pairs}`);
  assert(live.defined_pairs <= live.tracked * neurons && live.defined_pairs > 0.5 * live.tracked * neurons, `defined pairs ${live.defined_pairs} of ${live.tracked * neurons}`);
  const fig1 = live.fig1.figure.panels[0].histogram.counts;
  assert(sum(fig1) <= live.tracked && sum(fig1) > 0, `fig1 sums to ${sum(fig1)}`);
  // Bimodal: each end (|avg sign| >= 0.8) outweighs every bin of the middle.
  const lo = fig5[0] + fig5[1], hi = fig5[18] + fig5[19], middle = Math.max(...fig5.slice(4, 16));
  const outer = (lo + hi) / sum(fig5);
  shared.outer = outer;
  assert(lo > 2 * middle && hi > 2 * middle, `not bimodal: ends ${lo}/${hi}, largest middle bin ${middle}`);
  const evo = live.fig2.figure;
  assert(evo.steps.length === live.recordings && evo.high.samples + evo.low.samples <= live.tracked, 'figure 2 inconsistent');
  const stalls = longtasks.filter(t => t.start >= t0 && t.start <= t1);
  const worst = Math.max(0, ...stalls.map(t => t.duration));
  console.log(`    ${last.step} steps, test accuracy ${trained.test_accuracy.toFixed(4)}, ${trained.seconds.toFixed(1)} s; dense2 |avg sign|>=0.8: ${(100 * outer).toFixed(1)}%; main-thread tasks over 50 ms while training: ${stalls.length} (longest ${worst.toFixed(0)} ms)`);
  const frames = loaf.filter(f => f.start >= t0 && f.start <= t1 && f.blocking > 0).map(f => `${Math.round(f.duration)}ms [${f.scripts.join('; ')}]`);
  // One draw of figure 1 sometimes takes 70-120 ms on this 2-core machine (seen with the page of
  // 2026-12-01 as with today's, in about half the runs of 2026-12-02); more than one long task, or
  // any over 200 ms, is a stall.
  assert(stalls.length <= 1 && worst < 200, `${stalls.length} main-thread tasks over 50 ms while training (longest ${worst.toFixed(0)} ms; frames: ${frames.join(' | ')}; slowest drawing per figure: ${JSON.stringify(drawMs)})`);
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
});

test('clicking the neuron chart selects a neuron everywhere; the scrubber moves figure 2', async () => {
  const { page } = shared.main;
  const before = await page.evaluate(() => window.hn.live.live.view.neuron);
  const canvas = await page.$('section[data-figure="neurons"] canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  const readout = await page.waitForFunction(() => document.querySelector('section[data-figure="neurons"] .readout').innerText, null, { timeout: 5000 })
    .then(h => h.jsonValue()).catch(() => '');
  assert(/dense2/.test(readout), `no hover read-out: '${readout}'`);
  await page.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await page.waitForFunction(b => window.hn.live.live.view.neuron !== b, before, { timeout: 30_000, polling: 250 });
  const now = await page.evaluate(() => window.hn.live.live.view.neuron);
  assert(new URL(page.url()).searchParams.get('neuron') === String(now), 'URL does not hold the neuron');
  assert((await page.inputValue('#neuron')) === String(now), 'neuron input not updated');
  // Back to a traced neuron, then scrub figure 2 to the first recording.
  const traced = await page.evaluate(() => window.hn.live.live.traced[0]);
  await page.fill('#neuron', String(traced));
  await page.dispatchEvent('#neuron', 'change');
  await page.waitForFunction(n => window.hn.live.live.view.neuron === n && window.hn.live.live.fig2, traced, { timeout: 30_000, polling: 250 });
  await page.$eval('#scrubber', e => { e.value = '0'; e.dispatchEvent(new Event('input', { bubbles: true })); });
  await page.waitForFunction(() => /_step0$/.test(window.hn.live.live.fig2_at?.stem || ''), null, { timeout: 30_000, polling: 250 });
  const { fig2, fig2_at } = await page.evaluate(() => window.hn.live.live);
  const [high, low] = fig2_at.figure.panels.map(p => sum(p.histogram.counts));
  assert(high === fig2.figure.high.samples && low === fig2.figure.low.samples, `distribution panels ${high}/${low} vs categories ${fig2.figure.high.samples}/${fig2.figure.low.samples}`);
});

test('analysis fills figures 3, 4 and 8; results.json downloads and parses with the schema', async () => {
  const { page } = shared.main;
  await page.click('#analyze');
  const analysis = await hn(page, () => window.hn?.analysis, 15 * 60_000);
  const fig = stem => analysis.figures.find(f => f.stem.startsWith(stem)).figure;
  const q = fig('fig3'), w = fig('fig4'), c = fig('fig8');
  // Before the activation (the paper's, with the zero rank marked), then after it, per layer.
  const [qPre, qPost] = [q.curves.filter(k => !/after the activation$/.test(k.label)), q.curves.filter(k => /after the activation$/.test(k.label))];
  assert(qPre.length === 2 && qPre.every(k => k.xs.length === 11 && k.ys.every(y => y >= 0 && y <= 1) && k.marker > 0), 'figure 3 data');
  assert(qPost.length === 2 && qPost.every(k => k.xs.length === 11 && k.ys.every(y => y >= 0 && y <= 1)), 'figure 3 data after the activation');
  assert(w.curves.length === 2 && w.curves.every(k => k.xs.length === 10), 'figure 4 data');
  assert(c.panels.length === 2 && c.panels.every(p => sum(p.histogram.counts) > 0 && sum(p.histogram.counts) <= 512 * 10), 'figure 8 data');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export')]);
  const file = path.join(artifacts, 'results.json');
  await download.saveAs(file);
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert(r.model === 'mlp-relu' && r.layers['dense2-relu'].quantization.length === 11 && r.layers['dense1-relu'].sliding_window.length === 10, 'results.json content');
  // The native trainer's fields, from the same run pipeline: the spec and its fingerprint, layer
  // rotation per epoch, quantization after the activation.
  assert(/^spec-v1:[0-9a-f]{16}$/.test(r.settings) && r.spec.model === 'mlp-relu' && r.spec.preset === 'browser' && r.spec.data.train === 60000, `results.json spec: ${r.settings}`);
  assert(r.layer_rotation.length === 3 && r.layer_rotation.every(l => l.per_epoch.length === r.epoch_loss.length && l.per_epoch.every(d => d > 0)), 'results.json layer rotation');
  assert(r.layers['dense1-relu'].post_quantization.length === 11 && r.layers['dense2-relu'].post_quantization.some((p, i) => p.test_accuracy !== r.layers['dense2-relu'].quantization[i].test_accuracy), 'results.json post-activation quantization');
  if (trainer) {
    const v = spawnSync(trainer, ['validate', file], { encoding: 'utf8' });
    assert(v.status === 0, `trainer validate: ${v.stdout} ${v.stderr}`);
    console.log(`    ${v.stdout.trim()}`);
  }
  const svg = await Promise.all([page.waitForEvent('download'), page.click('section[data-figure="fig5"] .card-actions button:first-child')]);
  const svgText = fs.readFileSync(await svg[0].path(), 'utf8');
  assert(svgText.startsWith('<svg') && /dense2-relu/.test(svgText), 'figure 5 SVG export');
  // The analysis above ran on helper workers (one per core); the same model analysed in the
  // training worker alone gives the same results, number for number.
  await assertPooled(page, analysis);
  await page.evaluate(() => { window.hn.analysis = null; window.hn.results = null; window.hnSend('{"type":"analyze","workers":1}'); });
  await hn(page, () => window.hn?.analysis && window.hn?.results, 15 * 60_000);
  const [alone, single] = await page.evaluate(() => [window.hn.analysis, JSON.parse(window.hn.results.json)]);
  assert(alone.workers === 0, `workers=1 still used ${alone.workers} helpers`);
  assert(JSON.stringify(single.layers) === JSON.stringify(r.layers), 'the pooled analysis differs from the one-worker analysis');
  console.log(`    analysis ${analysis.seconds.toFixed(1)} s on ${analysis.workers} helper workers, ${alone.seconds.toFixed(1)} s in the training worker alone: the same results`);
  await shared.main.context.close();
});

test('embed mode renders one figure, live', async () => {
  const { page, context, consoleErrors } = await open('/?embed=fig5&layer=1&autostart=1&tracked=300', { width: 720, height: 440 });
  const live = await hn(page, () => window.hn?.live?.live, 120_000);
  assert((await page.$$('canvas')).length === 1, 'more than one canvas in embed mode');
  assert((await page.$$('.controls')).length === 0, 'controls shown in embed mode');
  assert(live.fig5.figure.panels[0].label.startsWith('dense2-relu'), 'embed shows the wrong layer');
  await page.waitForFunction(() => (window.hn.live.live.recordings || 0) >= 15, null, { timeout: 120_000, polling: 250 });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: path.join(artifacts, 'embed-fig5.png') });
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('the CNN trains in the page: conv channels get the same figures, recorder and analysis', async () => {
  const { page, context, consoleErrors } = await open('/?model=cnn-relu&layer=2&tracked=200&every=5');
  await waitPhase(page, 'ready');
  await page.click('#train');
  const t0 = Date.now();
  const live = await hn(page, () => window.hn?.live?.live?.recordings >= 3 && window.hn.points?.length > 1 && window.hn.live.live, 300_000);
  await page.click('#pause');
  await waitPhase(page, 'paused', 120_000);
  const trained = (Date.now() - t0) / 1000;
  assert(JSON.stringify(live.layers) === '[["conv1-relu",8],["conv2-relu",16],["conv3-relu",32]]', `layers ${JSON.stringify(live.layers)}`);
  assert(live.view.layer === 2 && live.traced.length === 32 && live.tracked === 200, `view ${JSON.stringify(live.view)}, traced ${live.traced.length}, tracked ${live.tracked}`);
  const counts = f => sum(f.figure.panels[0].histogram.counts);
  assert(counts(live.fig1) > 0 && counts(live.fig5) === live.defined_pairs && live.defined_pairs <= 200 * 32 && live.defined_pairs > 0, `figures 1/5: ${counts(live.fig1)}, ${counts(live.fig5)} of ${live.defined_pairs}`);
  assert(live.fig2 && live.fig2.figure.steps.length === live.recordings && live.fig2_at, 'figure 2 empty for a conv channel');
  const points = await page.evaluate(() => window.hn.points);
  assert(points.every(p => Number.isFinite(p.loss)) && points.at(-1).loss < points[0].loss, `loss ${points[0].loss} -> ${points.at(-1).loss}`);
  const rot = points.map(p => p.rotation).filter(r => r.length > 0).at(-1);
  assert(JSON.stringify(rot.map(([n]) => n)) === '["conv1","conv2","conv3","output"]', `rotation layers ${JSON.stringify(rot)}`);
  assert(new URL(page.url()).searchParams.get('model') === 'cnn-relu', `URL ${page.url()}`);
  await page.click('#analyze');
  const a0 = Date.now();
  const analysis = await hn(page, () => window.hn?.analysis, 10 * 60_000);
  await assertPooled(page, analysis);
  const q = analysis.figures.find(f => f.stem.startsWith('fig3')).figure;
  // Three conv layers, each before and after its activation.
  assert(q.curves.length === 6 && q.curves.filter(k => /after the activation$/.test(k.label)).length === 3 && q.curves.every(k => k.ys.length > 0 && k.ys.every(y => y >= 0 && y <= 1)), `figure 3: ${q.curves.length} curves`);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export')]);
  const file = path.join(artifacts, 'results-cnn.json');
  await download.saveAs(file);
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert(r.model === 'mnist-cnn-relu' && /^CNN on 28x28/.test(r.architecture) && r.dataset === 'MNIST', `results.json: ${r.model}, ${r.architecture}, ${r.dataset}`);
  assert(JSON.stringify(Object.keys(r.layers).sort()) === '["conv1-relu","conv2-relu","conv3-relu"]', `results layers ${Object.keys(r.layers)}`);
  assert(Object.values(r.layers).every(l => l.quantization.length > 0 && l.sliding_window.length > 0), 'experiments missing from results.json');
  const rate = points.slice(-3).map(p => p.samples_per_second.toFixed(0)).join(', ');
  console.log(`    CNN 8-16-32: ${points.at(-1).step} steps of 128 in ${trained.toFixed(0)} s (last points ${rate} samples/s), analysis ${((Date.now() - a0) / 1000).toFixed(0)} s on ${analysis.workers} helper workers`);
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('Fashion-MNIST loads on demand from the same origin; the URL and results.json say which data set ran', async () => {
  requested.length = 0;
  const { page, context, consoleErrors } = await open('/?tracked=100');
  await waitPhase(page, 'ready');
  assert(!requested.some(p => /fashion/.test(p)), 'Fashion-MNIST fetched before it was chosen');
  await page.selectOption('#data', 'fashion-mnist');
  await page.waitForFunction(() => /Fashion-MNIST loaded \(60000 train, 10000 test images\)/.test(document.querySelector('.status').innerText), null, { timeout: 120_000, polling: 250 });
  assert(requested.includes('/data/fashion-mnist/train-images-idx3-ubyte.gz'), 'not fetched from the same origin');
  assert(new URL(page.url()).searchParams.get('data') === 'fashion-mnist', `URL ${page.url()}`);
  await page.click('#train');
  await page.waitForFunction(() => (window.hn?.points?.length || 0) >= 2, null, { timeout: 120_000, polling: 250 });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export')]);
  const file = path.join(artifacts, 'results-fashion.json');
  await download.saveAs(file);
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert(r.dataset === 'Fashion-MNIST', `results.json dataset ${r.dataset}`);
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
  // A shared link names the data set: only Fashion-MNIST is fetched.
  requested.length = 0;
  const again = await open('/?data=fashion-mnist');
  await again.page.waitForFunction(() => /Fashion-MNIST loaded/.test(document.querySelector('.status').innerText), null, { timeout: 120_000, polling: 250 });
  assert(!requested.some(p => p.startsWith('/data/mnist/')), `MNIST fetched for a Fashion-MNIST link: ${requested.filter(p => p.startsWith('/data/'))}`);
  await again.context.close();
});

// MNIST-format files made here: `count` images of side x side, labels 0..9 (or `label` for all).
function idxFile(dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}
function ownFiles({ train = 600, test = 100, side = 28, badLabel = false } = {}) {
  // Each class a bright band at its own rows: learnable in a few steps.
  const images = n => { const px = new Uint8Array(n * side * side); for (let i = 0; i < n; i++) { const c = i % 10; for (let r = 0; r < 2; r++) for (let x = 0; x < side; x++) px[i * side * side + (2 + 2 * c + r) * side + x] = 200 + (x * 7 + i) % 56; } return px; };
  const labels = n => Array.from({ length: n }, (_, i) => (badLabel && i === 1 ? 12 : i % 10));
  return [
    { name: 'train-images-idx3-ubyte', mimeType: 'application/octet-stream', buffer: idxFile([train, side, side], images(train)) },
    { name: 'train-labels-idx1-ubyte', mimeType: 'application/octet-stream', buffer: idxFile([train], labels(train).map(l => (badLabel ? l % 10 : l))) },
    { name: 't10k-images-idx3-ubyte', mimeType: 'application/octet-stream', buffer: idxFile([test, side, side], images(test)) },
    { name: 't10k-labels-idx1-ubyte', mimeType: 'application/octet-stream', buffer: idxFile([test], labels(test)) },
  ];
}
test('own data: four IDX files, picked or dropped, train like MNIST; bad ones are refused naming the file', async () => {
  const { page, context, consoleErrors } = await open('/?data=own&tracked=50&every=1');
  await waitPhase(page, 'nodata');
  assert(/drop your four IDX files/.test(await page.$eval('.status', e => e.innerText)), 'no instructions for own data');
  assert(await trainDisabled(page), 'Train enabled without data');
  const failure = async (files, pattern) => {
    await page.evaluate(() => { if (window.hn) delete window.hn.data_failed; });
    await page.setInputFiles('#data-files', files);
    const message = await hn(page, () => window.hn?.data_failed?.message, 60_000);
    assert(pattern.test(message), `'${message}' does not match ${pattern}`);
    await waitPhase(page, 'nodata');
  };
  await failure(ownFiles().slice(0, 3), /got 3 files/);
  await failure(ownFiles({ badLabel: true }), /^could not parse own files: t10k-labels-idx1-ubyte: label 12 at index 1 is not a class/);
  await failure(ownFiles({ side: 32 }), /^train-images-idx3-ubyte: its images have 1024 values each \(32x32\); the MNIST models take 28x28 images \(784 values\)$/);
  const bad = ownFiles();
  bad[3] = { ...bad[3], name: 'notes.txt' };
  await failure(bad, /^notes\.txt: cannot tell which MNIST file this is/);
  // Picked.
  await page.setInputFiles('#data-files', ownFiles());
  await page.waitForFunction(() => /own files loaded \(600 train, 100 test images\)/.test(document.querySelector('.status').innerText), null, { timeout: 60_000, polling: 250 });
  await page.click('#train');
  await waitPhase(page, 'trained', 120_000);
  const points = await page.evaluate(() => window.hn.points);
  assert(points.at(-1).total_steps === Math.ceil(600 / 128) && points.every(p => Number.isFinite(p.loss)), `points ${JSON.stringify(points.at(-1))}`);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#export')]);
  const file = path.join(artifacts, 'results-own.json');
  await download.saveAs(file);
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert(r.dataset === 'own files' && new URL(page.url()).searchParams.get('data') === 'own', `dataset ${r.dataset}, URL ${page.url()}`);
  // Dropped onto the page (from MNIST, say): the same files, in another order.
  await page.selectOption('#data', 'mnist');
  await waitPhase(page, 'ready');
  const dropped = ownFiles({ train: 300 }).reverse().map(f => ({ name: f.name, bytes: [...f.buffer] }));
  await page.evaluate(files => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name));
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, dropped);
  await page.waitForFunction(() => /own files loaded \(300 train, 100 test images\)/.test(document.querySelector('.status').innerText), null, { timeout: 60_000, polling: 250 });
  assert(new URL(page.url()).searchParams.get('data') === 'own' && (await page.inputValue('#data')) === 'own', 'the drop did not switch the data set');
  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

test('hostile drops while training: a message each, the run and the loaded data go on', async () => {
  const { page, context, consoleErrors } = await open('/?tracked=50&every=5&epochs=50');
  await waitPhase(page, 'ready');
  await page.click('#train');
  await waitPhase(page, 'training');
  // Files made in the page and dropped on it, as a user would drop them from a file manager.
  const drop = files => page.evaluate(files => {
    window.hn.data_failed = undefined;
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(f.huge ? new File(Array(f.huge).fill(window.__chunk ||= new Uint8Array(1 << 20)), f.name) : new File([new Uint8Array(f.bytes)], f.name));
    window.__dropAt = performance.now();
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files);
  const named = fs => fs.map(f => ({ name: f.name, bytes: [...f.buffer] }));
  const good = ownFiles({ train: 300 });
  const with0 = replacement => named(good).map((f, i) => (i === 0 ? replacement : f));
  const cases = [
    ['not IDX', with0({ name: 'train-images-idx3-ubyte', bytes: [...Buffer.from('these are my holiday photos, not IDX')] }), /train-images-idx3-ubyte/],
    ['truncated', with0({ name: 'train-images-idx3-ubyte', bytes: [...good[0].buffer.subarray(0, 5000)] }), /train-images-idx3-ubyte.*truncated/],
    ['counts disagree', named(good).map((f, i) => (i === 1 ? { name: f.name, bytes: [...idxFile([250], Array.from({ length: 250 }, (_, k) => k % 10))] } : f)), /train-(images|labels)-idx\d-ubyte/],
    ['32x32 images', named(ownFiles({ train: 300, side: 32 })), /32x32/],
    // Chromium's fetch of a 2 GiB blob fails before its size can be read: the message names the file.
    ['a 2 GiB file', with0({ name: 'train-images-idx3-ubyte', huge: 2048 }), /could not load train-images-idx3-ubyte|train-images-idx3-ubyte.*more than/],
  ];
  for (const [what, files, pattern] of cases) {
    const before = await page.evaluate(() => window.hn.points.length);
    await drop(files);
    const message = await hn(page, () => window.hn?.data_failed?.message, 120_000);
    assert(pattern.test(message), `${what}: '${message}' does not match ${pattern}`);
    assert((await errorsText(page)).includes(message.slice(0, 40)), `${what}: the message is not shown in the page`);
    // The run goes on, on the data it had.
    await page.waitForFunction(n => window.hn.points.length > n, before, { timeout: 60_000, polling: 250 });
    assert(/^training|^paused/.test(await page.$eval('.status', e => e.dataset.phase)), `${what}: the run stopped`);
    assert((await page.inputValue('#data')) === 'mnist', `${what}: the data set changed`);
    const { drops, longtasks } = await page.evaluate(() => ({ drops: window.__dropAt, longtasks: window.__longtasks }));
    const worst = Math.max(0, ...longtasks.filter(t => t.start >= drops).map(t => t.duration));
    assert(worst < 200, `${what}: a main-thread task of ${worst.toFixed(0)} ms after the drop`);
  }
  // A second, good drop while training: the new data replaces the old, the run ends.
  await drop(named(good));
  await page.waitForFunction(() => /own files loaded \(300 train, 100 test images\)/.test(document.querySelector('.status').innerText), null, { timeout: 60_000, polling: 250 });
  await waitPhase(page, 'ready');
  assert((await page.inputValue('#data')) === 'own', 'the good drop did not switch the data set');
  // The worker is alive: the new data trains.
  await page.click('#train');
  await waitPhase(page, 'training');
  await page.waitForFunction(() => window.hn.points.length > 0, null, { timeout: 60_000, polling: 250 });
  assert(consoleErrors.every(e => !/panicked|RuntimeError|unreachable/.test(e)), `console errors: ${consoleErrors.join(' | ')}`);
  await context.close();
});

const errorCase = (name, routes, pattern) => test(name, async () => {
  const { page, context } = await open('/', { routes });
  await page.waitForSelector('.errors', { timeout: 60_000 });
  const text = await errorsText(page);
  assert(pattern.test(text), `message '${text}' does not match ${pattern}`);
  await context.close();
});
errorCase('missing data gets a clear message', [['**/data/mnist/t10k-labels-idx1-ubyte.gz', r => r.fulfill({ status: 404, body: 'gone' })]], /t10k-labels-idx1-ubyte\.gz.*404/);
errorCase('unparsable data gets a clear message', [['**/data/mnist/train-labels-idx1-ubyte.gz', r => r.fulfill({ status: 200, body: 'this is not MNIST' })]], /could not parse MNIST.*train-labels/);
errorCase('a worker that cannot start gets a clear message', [['**/worker_loader.js', r => r.fulfill({ status: 404, body: 'gone' })]], /worker/i);

// With --enable-unsafe-webgpu, headless Chromium offers a software (SwiftShader) adapter: slow,
// but every GPU read of the WebGPU path is real, and a blocking one would panic.
test('WebGPU: auto stays on the CPU on a software adapter; backend=wgpu trains, records and analyzes on it', async () => {
  const gpuBrowser = await launch(['--enable-unsafe-webgpu']);
  try {
    requested.length = 0;
    const auto = await open('/', { within: gpuBrowser });
    await waitPhase(auto.page, 'ready');
    const autoStatus = await auto.page.$eval('.status', e => e.innerText);
    assert(/ndarray/.test(autoStatus) && /software/.test(autoStatus), `auto on a software adapter: ${autoStatus}`);
    // A CPU run fetches only the CPU build of the worker; choosing WebGPU swaps in the other.
    assert(requested.includes('/worker_bg.wasm') && !requested.includes('/worker_gpu_bg.wasm'), `fetched for a CPU run: ${requested.filter(p => /worker/.test(p))}`);
    await auto.page.selectOption('#backend', 'wgpu');
    await auto.page.click('#train');
    // The worker is swapped, loads the data again, and only then starts the run.
    await waitPhase(auto.page, 'training', 120_000);
    const started = await hn(auto.page, () => window.hn?.backend?.name, 120_000);
    assert(/wgpu \(WebGPU/.test(started), `the swapped worker runs on ${started}`);
    assert(requested.includes('/worker_gpu_bg.wasm'), 'the WebGPU build was not fetched for a WebGPU run');
    assert(auto.consoleErrors.length === 0, `console errors: ${auto.consoleErrors.join(' | ')}`);
    await auto.context.close();

    const { page, context, consoleErrors } = await open('/?backend=wgpu&layer=1&batch=64&tracked=100&every=4&lr=0.002', { within: gpuBrowser });
    await waitPhase(page, 'ready');
    await page.click('#train');
    await page.waitForFunction(() => /wgpu \(WebGPU/.test(document.querySelector('.status .backend').innerText), null, { timeout: 60_000, polling: 250 });
    const t0 = Date.now();
    await page.waitForFunction(() => (window.hn?.points?.length || 0) >= 1, null, { timeout: 8 * 60_000, polling: 250 });
    const firstPoint = (Date.now() - t0) / 1000;
    await page.waitForFunction(() => (window.hn?.points?.at(-1)?.step || 0) >= 20 && (window.hn?.live?.live?.recordings || 0) >= 4, null, { timeout: 8 * 60_000, polling: 500 });
    const trainedAt = (Date.now() - t0) / 1000;
    await page.click('#pause');
    await waitPhase(page, 'paused', 120_000);
    // The live figures settle on the paused model.
    await page.waitForFunction(() => window.hn.live.live.step === window.hn.points.at(-1).step, null, { timeout: 60_000, polling: 250 }).catch(() => {});
    const { points, live } = await page.evaluate(() => ({ points: window.hn.points, live: window.hn.live.live }));
    const steps = points.at(-1).step;
    assert(points.every(p => Number.isFinite(p.loss)), 'a non-finite loss');
    const early = points[0].loss, late = points.at(-1).loss;
    assert(late < early, `loss did not fall on WebGPU: ${early} -> ${late}`);
    const [, neurons] = live.layers[live.view.layer];
    const fig5 = live.fig5.figure.panels[0].histogram.counts;
    assert(sum(fig5) === live.defined_pairs && live.defined_pairs <= live.tracked * neurons && live.defined_pairs > 0, `fig5 ${sum(fig5)} vs ${live.defined_pairs}`);
    assert(live.tracked === 100 && live.recordings >= 4, `tracked ${live.tracked}, recordings ${live.recordings}`);
    // Figure 2's snapshots were read back asynchronously, one per recording.
    const traced = live.traced[0];
    await page.fill('#neuron', String(traced));
    await page.dispatchEvent('#neuron', 'change');
    await page.waitForFunction(n => window.hn.live.live.view.neuron === n && window.hn.live.live.fig2, traced, { timeout: 60_000, polling: 250 });
    const evo = await page.evaluate(() => window.hn.live.live);
    assert(evo.fig2.figure.steps.length === evo.recordings, `figure 2 has ${evo.fig2.figure.steps.length} points for ${evo.recordings} recordings`);
    // The analysis runs on a CPU copy of the WebGPU model.
    await page.click('#analyze');
    const analysis = await hn(page, () => window.hn?.analysis, 10 * 60_000);
    // The WebGPU build's helpers are the CPU build's workers.
    await assertPooled(page, analysis);
    const q = analysis.figures.find(f => f.stem.startsWith('fig3')).figure;
    assert(q.curves.length === 4 && q.curves.filter(k => /after the activation$/.test(k.label)).length === 2 && q.curves.every(k => k.ys.every(y => y >= 0 && y <= 1)), 'figure 3 data on WebGPU');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export')]);
    const file = path.join(artifacts, 'results-webgpu.json');
    await download.saveAs(file);
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert(/WebGPU/.test(r.backend) && r.test_accuracy > 0.5, `results.json: backend ${r.backend}, test accuracy ${r.test_accuracy}`);
    assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
    const rate = points.slice(-3).map(p => p.samples_per_second.toFixed(0)).join(', ');
    console.log(`    ${r.backend}: first progress point after ${firstPoint.toFixed(0)} s (shader compilation), ${steps} steps of batch 64 by ${trainedAt.toFixed(0)} s (recording every 4 on 100 samples; last points ${rate} samples/s); analysis and export done at ${((Date.now() - t0) / 1000).toFixed(0)} s; test accuracy ${r.test_accuracy.toFixed(3)}`);
    await context.close();
  } finally {
    await gpuBrowser.close();
  }
});

// scripts/serve.sh serves the page before the WebGPU build of the worker exists: a run that
// asks for WebGPU then trains on the CPU build and says why, instead of failing.
test('without the WebGPU worker, a WebGPU run trains on the CPU and says why', async () => {
  const gpuBrowser = await launch(['--enable-unsafe-webgpu']);
  try {
    const missing = [['**/worker_gpu_loader.js', r => r.fulfill({ status: 404, body: 'not built yet' })]];
    const { page, context } = await open('/?backend=wgpu&batch=64&tracked=100&every=4', { routes: missing, within: gpuBrowser });
    await waitPhase(page, 'ready');
    const status = await page.$eval('.status', e => e.innerText);
    assert(/ndarray/.test(status) && /no WebGPU build of the worker/.test(status), `status without the WebGPU worker: ${status}`);
    assert((await errorsText(page)) === '', `error banner shown: ${await errorsText(page)}`);
    await page.click('#train');
    await page.waitForFunction(() => (window.hn?.points?.length || 0) >= 1, null, { timeout: 120_000, polling: 250 });
    const backend = await page.$eval('.status .backend', e => e.innerText);
    assert(/ndarray/.test(backend), `trained on ${backend}`);
    await context.close();
  } finally {
    await gpuBrowser.close();
  }
});

// The page against TF.js at its fastest on one model (`mlp`: 784-512-512-10; `cnn`: the page's
// conv 8-16-32 with batch-norm), same batch; writes bench-MODEL.json.
async function benchAgainstTfjs(model, label) {
  const { page, context } = await open('/');
  await waitPhase(page, 'ready');
  const bench = async recording => {
    await page.evaluate(() => { window.hn.bench_result = undefined; });
    await page.evaluate(r => window.hnSend(JSON.stringify({ type: 'bench', steps: r.steps, batch_size: 128, recording: r.recording, model: r.model })), { steps: BENCH_STEPS, recording, model });
    return hn(page, () => window.hn.bench_result, 20 * 60_000);
  };
  const on = await bench(true), off = await bench(false);
  assert(on.model === model && off.model === model, `benchmarked ${on.model}, not ${model}`);
  await context.close();
  // TF.js at its best on this machine: wasm with SIMD alone (a plain page), wasm with SIMD and
  // threads (a cross-origin isolated page, all cores), WebGL (Chromium's SwiftShader here) and its
  // plain-JavaScript backend, which is the only single-threaded one that trains a CNN: TF.js' wasm
  // backend has no Conv2DBackpropFilter kernel (tfjs 4.x), so a CNN's training step fails there.
  const isolatedServer = await serve(tfjsMounts, 0, '127.0.0.1', { isolated: true });
  const glBrowser = await launch(['--enable-unsafe-swiftshader']);
  const tfjs = {};
  try {
    for (const [name, backend, origin, within] of [
      ['wasm', 'wasm', base, browser],
      ['wasm_threads', 'wasm', `http://127.0.0.1:${isolatedServer.address().port}`, browser],
      ['webgl', 'webgl', base, glBrowser],
      ['cpu', 'cpu', base, browser],
    ]) {
      const context = await within.newContext();
      const page = await context.newPage();
      await page.goto(`${origin}/tfjs-bench.html`);
      tfjs[name] = await page.evaluate(([b, s, m]) => window.benchTfjs(b, s, 128, m), [backend, BENCH_STEPS, model]).catch(e => ({ error: e.message }));
      await context.close();
    }
  } finally {
    await glBrowser.close();
    isolatedServer.close();
  }
  const ran = Object.entries(tfjs).filter(([, r]) => r.samples_per_second > 0);
  if (model === 'mlp') assert(tfjs.wasm.samples_per_second > 0, `TF.js wasm did not run: ${JSON.stringify(tfjs.wasm)}`);
  const singleThreaded = ['wasm', 'cpu'].map(k => tfjs[k]).filter(r => r.samples_per_second > 0);
  assert(singleThreaded.length > 0, `no single-threaded TF.js backend ran: ${JSON.stringify(tfjs)}`);
  const bestSingle = Math.max(...singleThreaded.map(r => r.samples_per_second));
  assert(ran.every(([, r]) => r.model === model), `TF.js ran another model: ${JSON.stringify(tfjs)}`);
  const [fastest, best] = ran.reduce((a, b) => (b[1].samples_per_second > a[1].samples_per_second ? b : a));
  const result = {
    model, steps: BENCH_STEPS, batch: 128,
    page_recording_on: on.samples_per_second, page_recording_off: off.samples_per_second,
    tfjs: Object.fromEntries(Object.entries(tfjs).map(([k, r]) => [k, r.samples_per_second ? { samples_per_second: r.samples_per_second, detail: r.detail } : r])),
    tfjs_fastest: fastest,
    ratio_recording_on: on.samples_per_second / best.samples_per_second, ratio_recording_off: off.samples_per_second / best.samples_per_second,
    ratio_vs_single_thread_recording_on: on.samples_per_second / bestSingle,
  };
  fs.writeFileSync(path.join(artifacts, `bench-${model}.json`), JSON.stringify(result, null, 2));
  console.log(`    ${label}, batch 128, ${BENCH_STEPS} steps: page (${on.backend}) ${on.samples_per_second.toFixed(0)} samples/s with recording, ${off.samples_per_second.toFixed(0)} without`);
  for (const [k, r] of Object.entries(tfjs)) console.log(`    TF.js ${k}: ${r.samples_per_second ? `${r.samples_per_second.toFixed(0)} samples/s (${r.detail})` : `did not run: ${r.error}`}`);
  console.log(`    ratio page/TF.js at its fastest here (${fastest}): ${result.ratio_recording_on.toFixed(2)}x with recording, ${result.ratio_recording_off.toFixed(2)}x without; against its fastest single-threaded: ${result.ratio_vs_single_thread_recording_on.toFixed(2)}x with recording`);
}

test('benchmark: the page against TensorFlow.js at its fastest (wasm, wasm with threads, WebGL), same MLP and batch', () => benchAgainstTfjs('mlp', 'MLP 784-512-512-10'));

test('benchmark: the page against TensorFlow.js at its fastest, same small CNN and batch', () => benchAgainstTfjs('cnn', 'CNN conv 8-16-32 with batch-norm'));

let failed = 0;
for (const t of tests) {
  if (only && !only.some(o => t.name.includes(o))) continue;
  const started = Date.now();
  try {
    await t.fn();
    console.log(`ok   ${t.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${t.name}: ${e.message}`);
  }
}
await browser.close();
server.close();
console.log(failed ? `${failed} browser test(s) failed` : 'all browser tests passed');
process.exit(failed ? 1 : 0);
