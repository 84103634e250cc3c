// The page's side of the hash worker: one worker per file, ended when its hash is known.

/**
 * Start hashing `file`; returns {promise, cancel}. The promise resolves with the hex SHA-256;
 * `onProgress(done, total)` is called after each slice.
 */
export function hashFile(file, workerUrl, onProgress) {
  const worker = new Worker(workerUrl);
  let settle;
  const promise = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  const finish = (fn, value) => {
    worker.terminate();
    fn(value);
  };
  worker.onmessage = (event) => {
    const message = event.data;
    if (message.type === 'progress') onProgress(message.done, message.total);
    else if (message.type === 'done') finish(settle.resolve, message.hex);
    else finish(settle.reject, new Error(message.message));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    finish(settle.reject, new Error(event.message || 'the hash worker could not start'));
  };
  worker.postMessage({ file });
  return {
    promise,
    cancel: () => finish(settle.reject, new Error('cancelled')),
  };
}
