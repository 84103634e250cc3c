// One file's way to the server: a tus upload and, at the same time, its SHA-256 in a worker.
// When the server has given the upload's URL and the hash is known, the hash is POSTed to the
// server; the transfer is done when every byte is in and the server has recorded the hash.
//
// A Transfer knows nothing of the DOM: it calls `events.change(transfer)` whenever what a row
// shows may have changed, `events.uploaded(transfer)` when all bytes are in, and
// `events.finished(transfer)` when it is done and `events.failed(transfer)` when it fails.
import { Upload } from 'tus-js-client';
import { hashUrlFor, uploadId } from './config.js';
import { RateMeter, formatBytes, progressLine } from './format.js';
import { hashFile } from './hasher.js';
import {
  describeTusError, isRetryable, reasonForStatus, reasonForTusError, retryMessage,
} from './reasons.js';
import { fingerprintOf, forgetRecord, readRecord, updateRecord } from './store.js';

// A network drop (a train tunnel) must not fail an upload: back off to 30 s, then keep trying
// every 30 s for a day. tus-js-client starts the list again whenever bytes get through.
const THIRTY_SECONDS = 30000;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, THIRTY_SECONDS]
  .concat(new Array(2880).fill(THIRTY_SECONDS));
const HASH_RETRY_DELAYS = [1000, 3000, 5000, 10000, 20000, THIRTY_SECONDS];

export class Transfer {
  /**
   * @param {{file: File, relativePath: string, exhibit: string, description: string}} entry
   * @param {ReturnType<import('./config.js').readConfig>} config
   * @param {{change: Function, uploaded: Function, finished: Function, failed: Function}} events
   */
  constructor(entry, config, events) {
    this.file = entry.file;
    this.name = entry.relativePath || entry.file.name;
    this.config = config;
    this.events = events;
    this.metadata = metadataFor(entry, config.caseRef);
    this.fingerprint = fingerprintOf(entry.file, config.caseRef, config.endpoint);
    this.total = entry.file.size;

    this.phase = 'queued'; // queued | running | paused | done | failed
    this.failure = null; // {reason, stage: "upload" | "hash", retryable}
    this.sent = 0;
    this.meter = new RateMeter();
    this.upload = null;
    this.attempt = 0; // guards against a stale findPreviousUploads() after pause and resume
    this.url = null;
    this.uploadDone = false;

    this.sha256 = readRecord(this.fingerprint).sha256 || null;
    this.hashed = this.sha256 ? this.total : 0;
    this.hashJob = null;
    this.posting = false;
    this.hashRecorded = false;
    this.confirmed = false; // the server answered the hash after every byte was in
    this.hashAttempt = 0;
    this.hashRetryTimer = null;

    this.retry = null; // {status, at}: waiting to retry, for the detail line
    this.retryTicker = null;
  }

  // -- what a row shows ----------------------------------------------------------------

  /** Exactly one of: Hashing, Uploading, Paused, Uploaded, Failed: <reason>. */
  status() {
    if (this.phase === 'failed') return `Failed: ${this.failure.reason}`;
    if (this.phase === 'paused') return 'Paused';
    if (this.phase === 'done') return 'Uploaded';
    if (this.uploadDone) return 'Hashing';
    return 'Uploading';
  }

  /** Whole percent of the bytes sent, 0-100. */
  percent() {
    if (this.total === 0) return this.uploadDone ? 100 : 0;
    return Math.min(100, Math.floor((this.sent * 100) / this.total));
  }

  detail() {
    if (this.retry) {
      return retryMessage(this.retry.status, Math.max(0, Math.ceil((this.retry.at - Date.now()) / 1000)));
    }
    if (this.phase === 'queued') return `Waiting to start · ${formatBytes(this.total)}`;
    if (this.phase === 'done') return `${formatBytes(this.total)} · SHA-256 recorded`;
    if (this.uploadDone && this.phase !== 'failed') {
      if (!this.sha256) {
        const pct = this.total ? Math.floor((this.hashed * 100) / this.total) : 0;
        return `All ${formatBytes(this.total)} sent · SHA-256 ${pct}% computed`;
      }
      return `All ${formatBytes(this.total)} sent · recording the SHA-256`;
    }
    return progressLine(this.sent, this.total, this.phase === 'running' ? this.meter.rate() : 0);
  }

  /** Running or waiting to run: what keeps the items list polling and the queue busy. */
  isActive() {
    return this.phase === 'running' || this.phase === 'queued';
  }

  canPause() {
    return (this.phase === 'running' && !this.uploadDone) || this.phase === 'queued';
  }

  canResume() {
    return this.phase === 'paused';
  }

  canRetry() {
    return this.phase === 'failed' && this.failure.retryable;
  }

  // -- actions -----------------------------------------------------------------------

  start() {
    this.phase = 'running';
    this.failure = null;
    this.startHash();
    if (this.uploadDone) this.recordHash();
    else this.startUpload();
    this.changed();
  }

  pause() {
    if (!this.canPause()) return;
    this.phase = 'paused';
    this.attempt += 1;
    if (this.upload) this.upload.abort();
    this.clearRetry();
    this.changed();
  }

  /** Back in the queue; the page starts it when a slot is free. */
  resume() {
    if (!this.canResume()) return;
    this.phase = 'queued';
    this.changed();
  }

  retryNow() {
    if (!this.canRetry()) return;
    this.phase = 'queued';
    this.failure = null;
    this.changed();
  }

  // -- the tus upload ----------------------------------------------------------------

  startUpload() {
    if (!this.upload) this.upload = this.newUpload();
    const upload = this.upload;
    const attempt = ++this.attempt;
    this.meter.reset();
    if (upload.url) {
      upload.start(); // it knows its URL: HEAD for the server's offset, then PATCH from there
      return;
    }
    // Uploaded before, in this browser, before a reload or a restart: continue from the
    // server's offset instead of from zero.
    upload.findPreviousUploads().then((previous) => {
      if (attempt !== this.attempt || this.phase !== 'running') return;
      const latest = newest(previous);
      if (latest) upload.resumeFromPreviousUpload(latest);
      upload.start();
    }, () => {
      if (attempt === this.attempt && this.phase === 'running') upload.start();
    });
  }

  newUpload() {
    const { config } = this;
    return new Upload(this.file, {
      endpoint: config.endpoint,
      chunkSize: config.chunkSize,
      metadata: this.metadata,
      headers: { 'X-CSRF-Token': config.csrf },
      fingerprint: () => Promise.resolve(this.fingerprint),
      removeFingerprintOnSuccess: true,
      retryDelays: RETRY_DELAYS,
      onShouldRetry: (err, attempt, options) => this.shouldRetry(err, options.retryDelays[attempt]),
      onUploadUrlAvailable: () => {
        this.url = this.upload.url;
        updateRecord(this.fingerprint, { url: this.url, size: this.total });
        this.recordHash();
      },
      onProgress: (sent) => {
        this.clearRetry();
        this.sent = sent;
        this.meter.add(performance.now(), sent);
        this.changed();
      },
      onChunkComplete: (_chunk, accepted) => {
        updateRecord(this.fingerprint, { sent: accepted });
      },
      onSuccess: () => {
        this.clearRetry();
        this.uploadDone = true;
        this.sent = this.total;
        this.changed();
        this.events.uploaded(this);
        this.recordHash();
      },
      onError: (err) => {
        this.clearRetry();
        this.fail(reasonForTusError(err), 'upload', true);
      },
    });
  }

  shouldRetry(err, delay) {
    const { status } = describeTusError(err);
    if (this.phase !== 'running' || !isRetryable(status)) return false;
    this.waitToRetry(status, delay);
    return true;
  }

  // -- the hash ----------------------------------------------------------------------

  startHash() {
    if (this.sha256 || this.hashJob) return;
    this.hashJob = hashFile(this.file, this.config.workerUrl, (done) => {
      this.hashed = done;
      if (this.uploadDone) this.changed();
    });
    this.hashJob.promise.then((hex) => {
      this.hashJob = null;
      this.sha256 = hex;
      updateRecord(this.fingerprint, { sha256: hex });
      this.recordHash();
      this.changed();
    }, (err) => {
      this.hashJob = null;
      if (err.message !== 'cancelled') this.fail(`could not compute the SHA-256: ${err.message}`, 'hash', true);
    });
  }

  /**
   * POST the hash once the upload has a URL and the hash is known. Sent again once all bytes
   * are in if the first answer came before: only then can the server say whether it matches.
   */
  async recordHash() {
    if (!this.sha256 || !this.url || this.posting || this.phase !== 'running') return;
    if (this.hashRecorded && (this.confirmed || !this.uploadDone)) {
      this.finishIfDone();
      return;
    }
    this.posting = true;
    const afterUpload = this.uploadDone;
    let answer;
    try {
      answer = await this.postHash();
    } catch {
      answer = { retry: 0 }; // network error: the server could not be reached
    }
    this.posting = false;
    if (this.phase !== 'running') return;
    if ('retry' in answer) {
      this.retryHashLater(answer.retry);
      return;
    }
    if (answer.failed) {
      this.fail(answer.failed, 'hash', answer.retryable);
      return;
    }
    this.hashAttempt = 0;
    this.hashRecorded = true;
    this.confirmed = afterUpload;
    this.changed();
    if (answer.matches === false || answer.state === 'quarantined') {
      this.fail('hash mismatch (quarantined)', 'hash', false);
      return;
    }
    this.recordHash(); // again if the upload has finished since; else done
  }

  /** One POST of the hash: {state, item, matches}, or {retry: status}, or {failed, retryable}. */
  async postHash() {
    const response = await fetch(hashUrlFor(this.config, uploadId(this.url)), {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'X-CSRF-Token': this.config.csrf,
      },
      body: JSON.stringify({ sha256: this.sha256 }),
    });
    if (response.ok) return response.json().catch(() => ({}));
    if (response.status === 409) {
      return { failed: 'hash mismatch (a different SHA-256 was already recorded)', retryable: false };
    }
    if (isRetryable(response.status)) return { retry: response.status };
    const body = await response.text().catch(() => '');
    return { failed: reasonForStatus(response.status, body), retryable: true };
  }

  retryHashLater(status) {
    const delay = HASH_RETRY_DELAYS[Math.min(this.hashAttempt, HASH_RETRY_DELAYS.length - 1)];
    this.hashAttempt += 1;
    this.waitToRetry(status, delay);
    this.hashRetryTimer = setTimeout(() => {
      this.hashRetryTimer = null;
      this.clearRetry();
      this.recordHash();
    }, delay);
  }

  finishIfDone() {
    if (this.phase !== 'running' || !this.uploadDone || !this.hashRecorded || !this.confirmed) return;
    this.phase = 'done';
    forgetRecord(this.fingerprint);
    this.changed();
    this.events.finished(this);
  }

  // -- failing and waiting -----------------------------------------------------------

  fail(reason, stage, retryable) {
    if (this.phase === 'failed' || this.phase === 'done') return;
    this.phase = 'failed';
    this.failure = { reason, stage, retryable };
    this.attempt += 1;
    // A failed hash stops the bytes too: Retry starts whatever is unfinished, from where it was.
    if (this.upload && !this.uploadDone) this.upload.abort();
    this.clearRetry();
    this.changed();
    this.events.failed(this);
  }

  waitToRetry(status, delay) {
    this.retry = { status, at: Date.now() + delay };
    if (!this.retryTicker) this.retryTicker = setInterval(() => this.changed(), 1000);
    this.changed();
  }

  clearRetry() {
    if (this.hashRetryTimer) {
      clearTimeout(this.hashRetryTimer);
      this.hashRetryTimer = null;
    }
    if (this.retryTicker) clearInterval(this.retryTicker);
    this.retryTicker = null;
    if (this.retry) {
      this.retry = null;
      this.changed();
    }
  }

  changed() {
    this.events.change(this);
  }
}

/** tus metadata: empty optional fields are left out. */
function metadataFor(entry, caseRef) {
  const metadata = {
    filename: entry.file.name,
    filetype: entry.file.type || 'application/octet-stream',
    case: caseRef,
  };
  if (entry.exhibit) metadata.exhibit = entry.exhibit;
  if (entry.description) metadata.description = entry.description;
  if (entry.relativePath) metadata.relative_path = entry.relativePath;
  return metadata;
}

function newest(previous) {
  return previous.reduce((best, upload) => (
    !best || Date.parse(upload.creationTime) > Date.parse(best.creationTime) ? upload : best
  ), null);
}
