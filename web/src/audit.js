// /app/audit: "Verify ledger" without leaving the page. The form still works without scripts
// (the server answers the plain POST); with them, the job's progress shows in #verify-status.

const POLL_MS = 500;
const MAX_POLL_FAILURES = 20;

function main() {
  const form = document.getElementById('verify-form');
  const status = document.getElementById('verify-status');
  if (!form || !status) return;
  const button = form.querySelector('button[type="submit"], button:not([type])');
  const csrfInput = form.querySelector('input[name="csrf"]');

  const say = (text) => {
    status.textContent = text;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button) button.disabled = true;
    status.classList.remove('ok', 'bad');
    say('Verifying: starting');
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrfInput ? csrfInput.value : '', Accept: 'application/json' },
      });
      if (!response.ok) throw new Error(await failure(response));
      const job = await response.json();
      const done = await poll(job.status_url, say);
      say(done.message || `Verification ${done.state}`);
      // Verified in green, broken in red (the words say it too).
      status.classList.toggle('ok', done.ok === true);
      status.classList.toggle('bad', done.ok === false);
    } catch (err) {
      say(`Verification failed: ${err.message}`);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** Ask the job's status every 500 ms until it is done; resolves with the finished job. */
async function poll(url, say) {
  let failures = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let job;
    try {
      const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(await failure(response));
      job = await response.json();
      failures = 0;
    } catch (err) {
      failures += 1;
      if (failures >= MAX_POLL_FAILURES) throw err;
      continue; // a dropped connection for a moment: ask again
    }
    if (job.state !== 'running' && job.state !== 'queued') return job;
    say(`Verifying: ${job.checked || 0} of ${job.total || 0} entries`);
  }
}

async function failure(response) {
  const text = (await response.text().catch(() => '')).trim();
  try {
    const json = JSON.parse(text);
    if (json && typeof (json.error || json.detail) === 'string') return json.error || json.detail;
  } catch {
    // plain text
  }
  return text && !text.startsWith('<') ? text.slice(0, 200) : `the server answered ${response.status}`;
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
