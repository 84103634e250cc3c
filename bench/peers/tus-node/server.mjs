// The Node tus server as its project documents it: @tus/server with @tus/file-store, nothing
// tuned. bench/peers/tus_node.py copies this file beside its node_modules (in the bench cache,
// outside git) and starts it: `node server.mjs DIRECTORY`. It listens on a free port of
// 127.0.0.1 (the kernel picks it, so no race with other benchmarks) and prints one JSON line,
// {"port": N}, once it accepts connections; SIGTERM closes it.
import http from 'node:http';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const directory = process.argv[2];
if (!directory) {
  console.error('usage: node server.mjs DIRECTORY');
  process.exit(2);
}

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => tus.handle(req, res));

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
