// #items: the case's items as the server renders them. While uploads run, or while any item is
// still being worked on (an element with data-settled="false"), fetch the fragment again every
// 3 s and put it in place. Polling stops once everything is settled and no upload is active,
// and pauses while the page is hidden.

const INTERVAL = 3000;

/** @param {() => boolean} uploading  whether any upload on the page is active */
export function itemsRefresher(uploading) {
  const section = document.querySelector('#items[data-refresh]');
  if (!section) return { refresh() {}, wake() {} };
  const url = section.dataset.refresh;
  let timer = null;
  let inFlight = false;

  const unsettled = () => section.querySelector('[data-settled="false"]') !== null;

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (document.visibilityState !== 'visible' || !(uploading() || unsettled())) return;
    timer = setTimeout(refresh, INTERVAL);
  }

  async function refresh() {
    clearTimeout(timer);
    timer = null;
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        headers: { Accept: 'text/html' },
        cache: 'no-store',
      });
      if (response.ok) section.innerHTML = await response.text();
    } catch {
      // Offline for a moment: the next round tries again.
    } finally {
      inFlight = false;
    }
    schedule();
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') clearTimeout(timer);
    else if (uploading() || unsettled()) refresh();
  });
  schedule();

  // refresh(): now (an upload finished); wake(): start polling if it had stopped.
  return { refresh, wake: () => { if (!timer && !inFlight) schedule(); } };
}
