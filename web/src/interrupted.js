// #interrupted: uploads this browser started for this case and never finished (closed tab,
// reload, crash). tus-js-client remembers their URLs; choosing the same file again continues
// from the server's offset. "Forget" drops the memory and ends the partial upload on the server.
import { formatBytes } from './format.js';
import { forgetUpload, readRecord, storedUploads } from './store.js';

/**
 * @param {HTMLElement} container  #interrupted
 * @param {ReturnType<import('./config.js').readConfig>} config
 * @param {(fingerprint: string) => boolean} isOpen  whether a row on this page has that upload
 * @param {(text: string) => void} announce
 */
export function interruptedList(container, config, isOpen, announce) {
  function render() {
    const uploads = storedUploads(config.caseRef).filter((upload) => !isOpen(upload.fingerprint));
    container.replaceChildren();
    if (uploads.length === 0) return;
    const list = document.createElement('ul');
    list.className = 'interrupted-list';
    uploads.forEach((upload, index) => list.append(entry(upload, index)));
    container.append(list);
  }

  function entry(upload, index) {
    const meta = upload.metadata || {};
    const name = meta.relative_path || meta.filename || 'unnamed file';
    const li = document.createElement('li');
    li.className = 'interrupted';
    const text = document.createElement('span');
    text.id = `interrupted-${index}`;
    text.className = 'interrupted-text';
    text.textContent = `Interrupted: ${name}, choose the file again to continue`;
    const facts = document.createElement('span');
    facts.className = 'interrupted-facts';
    const { sent } = readRecord(upload.fingerprint);
    const size = Number(upload.size);
    facts.textContent = Number.isFinite(size)
      ? [formatBytes(size), sent >= 0 && size > 0 ? `${Math.floor((sent * 100) / size)}% sent` : '']
        .filter(Boolean).join(' · ')
      : '';
    const forget = document.createElement('button');
    forget.type = 'button';
    forget.className = 'upload-button';
    forget.textContent = 'Forget';
    forget.setAttribute('aria-describedby', text.id);
    forget.addEventListener('click', () => {
      forgetUpload(upload.fingerprint);
      endOnServer(upload.uploadUrl);
      render();
      announce(`Forgot ${name}`);
    });
    li.append(text, facts, forget);
    return li;
  }

  /** Best effort (tus termination): the server's expiry cleans up if this does not get through. */
  function endOnServer(url) {
    if (!url) return;
    fetch(url, {
      method: 'DELETE',
      credentials: 'same-origin',
      headers: { 'Tus-Resumable': '1.0.0', 'X-CSRF-Token': config.csrf },
    }).catch(() => {});
  }

  render();
  return { render };
}
