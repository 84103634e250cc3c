// The case page's uploader: files and folders from the two inputs or a drop go up over tus
// (tus-js-client), resumably, each with its SHA-256 computed in a worker at the same time.
// Entry point of build/upload.js; everything it needs is found by id under #uploader.
import { itemsRefresher } from './case.js';
import { readConfig } from './config.js';
import { filesFromDrop, filesFromInput } from './drop.js';
import { interruptedList } from './interrupted.js';
import { createRow } from './row.js';
import { Transfer } from './transfer.js';

// Files sending at once (each also has a hash worker); the rest wait their turn.
const MAX_RUNNING = 3;

function main() {
  const section = document.getElementById('uploader');
  if (!section) return;
  const config = readConfig(section);
  const byId = (id) => document.getElementById(id);
  const list = byId('uploads');
  const notice = byId('upload-notice');
  const exhibit = byId('exhibit');
  const description = byId('description');

  const transfers = [];
  const views = new Map();

  const announce = (text) => {
    if (notice) notice.textContent = text;
  };
  const items = itemsRefresher(() => transfers.some((t) => t.isActive()));
  const interrupted = byId('interrupted')
    ? interruptedList(byId('interrupted'), config,
      (fingerprint) => transfers.some((t) => t.fingerprint === fingerprint && t.phase !== 'done'), announce)
    : { render() {} };

  const events = {
    change(transfer) {
      const view = views.get(transfer);
      if (view) view.render();
      // A resumed or retried row waits in the queue; a finished or paused one frees a slot.
      queueMicrotask(pump);
    },
    uploaded() {
      items.refresh();
    },
    finished(transfer) {
      announce(`${transfer.name} uploaded`);
      items.refresh();
    },
    failed(transfer) {
      announce(`${transfer.name}: ${transfer.status()}`);
    },
  };

  function pump() {
    let running = transfers.filter((t) => t.phase === 'running').length;
    for (const transfer of transfers) {
      if (running >= MAX_RUNNING) break;
      if (transfer.phase === 'queued') {
        running += 1;
        transfer.start();
      }
    }
    items.wake();
  }

  function add(entries) {
    const fields = {
      exhibit: exhibit ? exhibit.value.trim() : '',
      description: description ? description.value.trim() : '',
    };
    let added = 0;
    for (const entry of entries) {
      const transfer = new Transfer({ ...entry, ...fields }, config, events);
      // The same file twice for this case on one page is one upload.
      if (transfers.some((t) => t.fingerprint === transfer.fingerprint && t.phase !== 'done' && t.phase !== 'failed')) {
        continue;
      }
      const view = createRow(transfer);
      transfers.push(transfer);
      views.set(transfer, view);
      list.append(view.element);
      added += 1;
    }
    if (added) announce(added === 1 ? `1 file added` : `${added} files added`);
    interrupted.render();
    pump();
  }

  for (const id of ['add-files', 'add-folder']) {
    const input = byId(id);
    if (!input) continue;
    input.addEventListener('change', () => {
      add(filesFromInput(input));
      input.value = ''; // choosing the same file again must fire "change" again
    });
  }

  wireDropZone(byId('drop-zone'), add, announce);

  const bulk = { 'pause-all': (t) => t.pause(), 'resume-all': (t) => t.resume(), 'retry-all': (t) => t.retryNow() };
  for (const [id, action] of Object.entries(bulk)) {
    const b = byId(id);
    if (b) b.addEventListener('click', () => transfers.forEach(action));
  }
}

function wireDropZone(zone, add, announce) {
  if (!zone) return;
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes('Files');
  // A file dropped beside the zone must not make the browser open it and leave the page.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !zone.contains(event.target)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = 'none';
      }
    });
  }
  let depth = 0; // dragenter/dragleave fire for every child element crossed
  zone.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add('is-dragging');
  });
  zone.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove('is-dragging');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove('is-dragging');
    filesFromDrop(event.dataTransfer).then(add, (err) => announce(`Could not read what was dropped: ${err.message}`));
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
