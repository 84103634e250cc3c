// One <li class="upload"> per file: name, progress bar, status word, detail line and the
// Pause / Resume / Retry buttons. The structure is fixed when the row is made; updates only
// change text, attributes and the bar's width, so nothing moves while uploads progress.

let rows = 0;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text) {
  const node = el('button', 'upload-button', text);
  node.type = 'button';
  return node;
}

/** Build the row for `transfer`; returns {element, render}. */
export function createRow(transfer) {
  rows += 1;
  const nameId = `upload-name-${rows}`;
  const element = el('li', 'upload');

  const name = el('span', 'upload-name', transfer.name);
  name.id = nameId;
  name.title = transfer.name;
  const status = el('span', 'upload-status');

  const progress = el('div', 'upload-progress');
  progress.setAttribute('role', 'progressbar');
  progress.setAttribute('aria-valuemin', '0');
  progress.setAttribute('aria-valuemax', '100');
  progress.setAttribute('aria-valuenow', '0');
  progress.setAttribute('aria-label', transfer.name);
  const bar = el('div', 'upload-bar');
  progress.append(bar);

  const detail = el('span', 'upload-detail');
  const actions = el('span', 'upload-actions');
  const pause = button('Pause');
  const resume = button('Resume');
  const retry = button('Retry');
  for (const b of [pause, resume, retry]) b.setAttribute('aria-describedby', nameId);
  pause.addEventListener('click', () => transfer.pause());
  resume.addEventListener('click', () => transfer.resume());
  retry.addEventListener('click', () => transfer.retryNow());
  actions.append(pause, resume, retry);

  element.append(name, status, progress, detail, actions);

  const setText = (node, text) => {
    if (node.textContent !== text) node.textContent = text;
  };

  function render() {
    const statusText = transfer.status();
    setText(status, statusText);
    element.dataset.state = statusText.startsWith('Failed') ? 'failed' : statusText.toLowerCase();
    const pct = String(transfer.percent());
    if (progress.getAttribute('aria-valuenow') !== pct) {
      progress.setAttribute('aria-valuenow', pct);
      progress.setAttribute('aria-valuetext', `${pct}% sent`);
      bar.style.width = `${pct}%`; // CSSOM, not a style attribute: allowed by the CSP
    }
    setText(detail, transfer.detail());

    // A button that just got disabled under the keyboard would drop focus to <body>:
    // hand it to the button that now applies.
    const hadFocus = actions.contains(document.activeElement);
    pause.disabled = !transfer.canPause();
    resume.disabled = !transfer.canResume();
    retry.disabled = !transfer.canRetry();
    if (hadFocus && document.activeElement && document.activeElement.disabled) {
      const next = [resume, pause, retry].find((b) => !b.disabled);
      if (next) next.focus();
    }
  }

  render();
  return { element, render };
}
