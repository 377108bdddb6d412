// First load of the page under network throttling: time from navigation to an enabled Train
// button, and to the data being loaded (the status says ready), in headless Chromium with a cold
// cache. The server (scripts/serve.mjs) gzips like a static host and sends every response
// through one throttled link. A benchmark, not a test: it prints numbers and never fails on them.
//   node tests/browser/load-time.mjs [DIST ...]     (default: dist/; two folders print a ratio)
//   RUNS=3 PROFILES=cable,fast3g
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';
import { serve, throttledLink } from '../../scripts/serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dists = process.argv.slice(2).length ? process.argv.slice(2) : [path.resolve(here, '../../dist')];
const RUNS = Number(process.env.RUNS || 2);
// Chrome DevTools' "Fast 3G" and WebPageTest's "Cable" (down, round trip).
const PROFILES = {
  cable: { bytesPerSecond: 5e6 / 8, latencyMs: 28, label: 'cable (5 Mbit/s, 28 ms)' },
  fast3g: { bytesPerSecond: 1.44e6 / 8, latencyMs: 562, label: 'fast 3G (1.44 Mbit/s, 562 ms)' },
};
const profiles = (process.env.PROFILES || 'cable,fast3g').split(',');

const browser = await launch();

async function once(dist, profile) {
  const link = throttledLink(PROFILES[profile]);
  let bytes = 0;
  const stream = link.stream.bind(link);
  link.stream = () => { const s = stream(); s.on('data', c => { bytes += c.length; }); return s; };
  const server = await serve([['/', dist]], 0, '127.0.0.1', { link });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  try {
    const t0 = Date.now();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForSelector('#train:not([disabled])', { timeout: 600_000 });
    const train = (Date.now() - t0) / 1000;
    const trainBytes = bytes;
    await page.waitForSelector('.status[data-phase="ready"]', { timeout: 600_000 });
    const ready = (Date.now() - t0) / 1000;
    return { train, ready, trainBytes, bytes };
  } finally {
    await context.close();
    server.close();
  }
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
for (const profile of profiles) {
  for (const dist of dists) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await once(dist, profile));
    const r = { train: median(runs.map(x => x.train)), ready: median(runs.map(x => x.ready)), trainMB: runs[0].trainBytes / 1e6, MB: runs[0].bytes / 1e6 };
    results[`${profile} ${dist}`] = r;
    console.log(`${PROFILES[profile].label}, ${dist}: Train enabled after ${r.train.toFixed(1)} s (${r.trainMB.toFixed(2)} MB sent), ` +
      `data loaded after ${r.ready.toFixed(1)} s (${r.MB.toFixed(2)} MB) [median of ${RUNS}: ${runs.map(x => x.train.toFixed(1)).join(', ')} / ${runs.map(x => x.ready.toFixed(1)).join(', ')}]`);
  }
  if (dists.length === 2) {
    const [a, b] = dists.map(d => results[`${profile} ${d}`]);
    console.log(`${PROFILES[profile].label}: Train enabled ${(a.train / b.train).toFixed(2)}x sooner with ${dists[1]}; data loaded ${(a.ready / b.ready).toFixed(2)}x sooner`);
  }
}
await browser.close();
