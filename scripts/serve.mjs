// A static file server for dist/ (the page) with the right MIME types; used by scripts/serve.sh
// and by the browser tests (which mount extra folders). `node scripts/serve.mjs [dir] [port]`.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { PassThrough, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.gz': 'application/gzip', '.png': 'image/png', '.svg': 'image/svg+xml',
  '.md': 'text/plain; charset=utf-8',
};

// Cross-origin isolation (COOP + COEP): what a page needs for SharedArrayBuffer, and so for
// WebAssembly threads (TF.js' threaded wasm backend).
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cross-origin-resource-policy': 'same-origin',
};

// What a static host compresses on the fly (the data files are gzip already).
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.wasm', '.css', '.json', '.svg', '.md']);

/// A shared link of `bytesPerSecond` with `latencyMs` before each response's first byte: every
/// response's bytes queue for the same budget, as on one connection to a slow network.
export function throttledLink({ bytesPerSecond, latencyMs }) {
  let freeAt = 0; // when the link has sent everything queued so far
  return {
    latencyMs,
    stream() {
      return new Transform({
        transform(chunk, _enc, done) {
          const now = Date.now();
          freeAt = Math.max(freeAt, now) + (chunk.length / bytesPerSecond) * 1000;
          setTimeout(() => done(null, chunk), freeAt - now);
        },
      });
    },
  };
}

const gzipCache = new Map();
function gzipped(file) {
  const mtime = fs.statSync(file).mtimeMs;
  const hit = gzipCache.get(file);
  if (hit && hit.mtime === mtime) return hit.body;
  const body = zlib.gzipSync(fs.readFileSync(file), { level: 6 });
  gzipCache.set(file, { mtime, body });
  return body;
}

/// `mounts`: [url prefix, folder or file] pairs, most specific first; '/' serves index.html for folders.
/// `isolated`: send the cross-origin isolation headers with every response.
/// `compress`: gzip text and WebAssembly for clients that accept it, as static hosts do.
/// `link`: a `throttledLink` every response goes through (the load-time benchmark).
/// `log`: called with each request's path (the browser tests check what the page fetched).
export function serve(mounts, port = 0, host = '127.0.0.1', { isolated = false, compress = true, link = null, log = null } = {}) {
  const resolved = mounts.map(([prefix, target]) => [prefix, path.resolve(target)]);
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (log) log(url);
    const hit = resolved.find(([p]) => url.startsWith(p));
    if (!hit) { res.writeHead(404); res.end('not found'); return; }
    const [prefix, target] = hit;
    let file = prefix.endsWith('/') ? path.join(target, url.slice(prefix.length)) : target;
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(target) || !fs.existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
    const ext = path.extname(file);
    const headers = { 'content-type': MIME[ext] || 'application/octet-stream', ...(isolated ? ISOLATION : {}) };
    const gzip = compress && COMPRESSIBLE.has(ext) && /\bgzip\b/.test(req.headers['accept-encoding'] || '');
    const body = gzip ? gzipped(file) : null;
    if (gzip) Object.assign(headers, { 'content-encoding': 'gzip', vary: 'accept-encoding' });
    headers['content-length'] = gzip ? body.length : fs.statSync(file).size;
    const send = () => {
      res.writeHead(200, headers);
      const source = gzip ? new PassThrough().end(body) : fs.createReadStream(file);
      (link ? source.pipe(link.stream()) : source).pipe(res);
    };
    if (link) setTimeout(send, link.latencyMs); else send();
  });
  return new Promise(r => server.listen(port, host, () => r(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] || 'dist';
  const port = Number(process.argv[3] || process.env.PORT || 8080);
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    console.error(`serve: ${dir}/index.html not found; build the page first (bash scripts/build-web.sh)`);
    process.exit(1);
  }
  const server = await serve([['/', dir]], port);
  console.log(`serving ${dir}: open http://127.0.0.1:${server.address().port}/  (Ctrl-C stops)`);
}
