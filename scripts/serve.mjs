// A static file server for dist/ (the page) with the right MIME types; used by scripts/serve.sh
// and by the browser tests (which mount extra folders). `node scripts/serve.mjs [dir] [port]`.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
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

/// `mounts`: [url prefix, folder or file] pairs, most specific first; '/' serves index.html for folders.
/// `isolated`: send the cross-origin isolation headers with every response.
export function serve(mounts, port = 0, host = '127.0.0.1', { isolated = false } = {}) {
  const resolved = mounts.map(([prefix, target]) => [prefix, path.resolve(target)]);
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const hit = resolved.find(([p]) => url.startsWith(p));
    if (!hit) { res.writeHead(404); res.end('not found'); return; }
    const [prefix, target] = hit;
    let file = prefix.endsWith('/') ? path.join(target, url.slice(prefix.length)) : target;
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(target) || !fs.existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] || 'application/octet-stream', ...(isolated ? ISOLATION : {}) });
    fs.createReadStream(file).pipe(res);
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
