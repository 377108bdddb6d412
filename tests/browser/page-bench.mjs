// A benchmark, not a test: the page's own training benchmark (the worker's `bench` message, the
// one tests/browser/run.mjs compares with TF.js) on one or more builds of the page, rounds
// alternating between them so that the machine's drift falls on each alike.
// `node tests/browser/page-bench.mjs [DIST ...]` (default dist/); ROUNDS=3, MODELS=mlp,cnn,
// STEPS=60. Prints samples/s per build, model and recording on/off, each round and the best.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';
import { serve } from '../../scripts/serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dists = (process.argv.length > 2 ? process.argv.slice(2) : [path.join(here, '../../dist')]).map(d => path.resolve(d));
const rounds = Number(process.env.ROUNDS || 3);
const models = (process.env.MODELS || 'mlp,cnn').split(',');
const steps = Number(process.env.STEPS || 60);
if (!(rounds >= 1) || !(steps >= 1)) throw new Error(`ROUNDS and STEPS must be at least 1 (ROUNDS=${process.env.ROUNDS}, STEPS=${process.env.STEPS})`);

const servers = await Promise.all(dists.map(d => serve([['/', d]], 0, '127.0.0.1', {})));
const browser = await launch();

async function benchOnce(server, model, recording) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForSelector('.status[data-phase="ready"]', { timeout: 120_000 });
    await page.evaluate(r => { window.hn.bench_result = undefined; window.hnSend(JSON.stringify({ type: 'bench', steps: r.steps, batch_size: 128, recording: r.recording, model: r.model })); }, { steps, recording, model });
    await page.waitForFunction(() => window.hn.bench_result, null, { timeout: 20 * 60_000, polling: 250 });
    const r = await page.evaluate(() => window.hn.bench_result);
    if (r.model !== model) throw new Error(`benchmarked ${r.model}, not ${model}`);
    return r.samples_per_second;
  } finally {
    await context.close();
  }
}

const results = {};
try {
  for (let round = 1; round <= rounds; round++) {
    for (const model of models) {
      for (const recording of [true, false]) {
        for (const [i, server] of servers.entries()) {
          const key = `${dists[i]} ${model} recording ${recording ? 'on' : 'off'}`;
          const sps = await benchOnce(server, model, recording);
          (results[key] ||= []).push(sps);
          console.log(`round ${round}: ${key}: ${sps.toFixed(0)} samples/s`);
        }
      }
    }
  }
} finally {
  await browser.close();
  servers.forEach(s => s.close());
}
console.log('best of each:');
for (const [key, v] of Object.entries(results)) console.log(`  ${key}: ${Math.max(...v).toFixed(0)} samples/s (rounds: ${v.map(x => x.toFixed(0)).join(', ')})`);
