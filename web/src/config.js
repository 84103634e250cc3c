// The uploader's settings, read once from the data attributes the server renders on
// <section id="uploader">. Nothing else on the page is configuration.

const DEFAULT_CHUNK = 8 * 1024 * 1024;

export function readConfig(section) {
  const data = section.dataset;
  return {
    // tus-js-client resolves the Location header against the endpoint, so it must be absolute.
    endpoint: new URL(data.endpoint || '/files/', window.location.href).href,
    caseRef: data.case || '',
    chunkSize: Number(data.chunkSize) > 0 ? Number(data.chunkSize) : DEFAULT_CHUNK,
    csrf: data.csrf || '',
    hashUrl: data.hashUrl || '',
    workerUrl: data.worker || '/app/static/build/hash-worker.js',
  };
}

/** The URL that records the officer's hash of upload `id`. */
export function hashUrlFor(config, id) {
  return config.hashUrl.replace('{id}', encodeURIComponent(id));
}

/** The upload id is the last path segment of the upload URL the server gave. */
export function uploadId(url) {
  const path = new URL(url, window.location.href).pathname.replace(/\/+$/, '');
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}
