// What this browser remembers between page loads, in localStorage:
// - tus-js-client's own entries ("tus::<fingerprint>::<n>" -> {uploadUrl, size, metadata}), written and
//   removed by tus-js-client itself; we only read them to list interrupted uploads, and remove them
//   when the officer forgets one;
// - our entry per fingerprint ("evidence::<fingerprint>" -> {sha256, sent, size, url}), so a hash
//   need not be computed twice and a resumed upload after a reload can still send it.

const TUS_PREFIX = 'tus::';
const OWN_PREFIX = 'evidence::';

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: uploads still work, they just cannot resume after a reload
  }
}

/** The fingerprint tus-js-client stores uploads under: one per case, file and endpoint. */
export function fingerprintOf(file, caseRef, endpoint) {
  return ['evidence', caseRef, file.name, file.size, file.type, file.lastModified, endpoint].join('/');
}

export function readRecord(fingerprint) {
  const store = storage();
  if (!store) return {};
  try {
    return JSON.parse(store.getItem(OWN_PREFIX + fingerprint) || '{}') || {};
  } catch {
    return {};
  }
}

export function updateRecord(fingerprint, patch) {
  const store = storage();
  if (!store) return;
  try {
    store.setItem(OWN_PREFIX + fingerprint, JSON.stringify({ ...readRecord(fingerprint), ...patch }));
  } catch {
    // Quota exceeded: losing the record only costs a re-hash or a restart from the server's offset.
  }
}

export function forgetRecord(fingerprint) {
  const store = storage();
  if (store) store.removeItem(OWN_PREFIX + fingerprint);
}

/** tus-js-client's stored uploads for `caseRef`, one per fingerprint (the newest). */
export function storedUploads(caseRef) {
  const store = storage();
  if (!store) return [];
  const byFingerprint = new Map();
  for (let i = 0; i < store.length; i += 1) {
    const key = store.key(i);
    if (!key || !key.startsWith(TUS_PREFIX)) continue;
    let entry;
    try {
      entry = JSON.parse(store.getItem(key));
    } catch {
      continue;
    }
    if (!entry || !entry.metadata || entry.metadata.case !== caseRef) continue;
    const fingerprint = key.slice(TUS_PREFIX.length, key.lastIndexOf('::'));
    const previous = byFingerprint.get(fingerprint);
    if (!previous || Date.parse(entry.creationTime) > Date.parse(previous.creationTime)) {
      byFingerprint.set(fingerprint, { ...entry, fingerprint });
    }
  }
  return [...byFingerprint.values()];
}

/** Drop every trace of an upload: tus-js-client's entries for the fingerprint and ours. */
export function forgetUpload(fingerprint) {
  const store = storage();
  if (!store) return;
  const prefix = `${TUS_PREFIX}${fingerprint}::`;
  const keys = [];
  for (let i = 0; i < store.length; i += 1) {
    const key = store.key(i);
    if (key && key.startsWith(prefix)) keys.push(key);
  }
  keys.forEach((key) => store.removeItem(key));
  forgetRecord(fingerprint);
}
