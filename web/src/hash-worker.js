// Web Worker: the SHA-256 of a File, streamed in slices so memory stays flat however large the
// file. hash-wasm compiles its embedded WebAssembly (the page's CSP allows 'wasm-unsafe-eval').
//
// In:  {file: File}
// Out: {type: "progress", done, total} after each slice, then {type: "done", hex}
//      or {type: "error", message}.
import { createSHA256 } from 'hash-wasm';

const SLICE = 8 * 1024 * 1024;

self.onmessage = async (event) => {
  const { file } = event.data;
  try {
    const sha256 = await createSHA256();
    sha256.init();
    for (let offset = 0; offset < file.size; offset += SLICE) {
      const end = Math.min(offset + SLICE, file.size);
      sha256.update(new Uint8Array(await file.slice(offset, end).arrayBuffer()));
      self.postMessage({ type: 'progress', done: end, total: file.size });
    }
    self.postMessage({ type: 'done', hex: sha256.digest('hex') });
  } catch (err) {
    self.postMessage({ type: 'error', message: String((err && err.message) || err) });
  }
};
