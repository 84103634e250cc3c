// Sizes, rates and durations in the words the rows show: "12.3 MB of 300 MB · 45.1 MB/s · 6 s left".
// Decimal units, as disks and networks are sold.

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

export function formatBytes(bytes) {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  // Three significant figures at most: 300 MB, 45.1 MB, 6.5 MB.
  const text = value >= 100 ? value.toFixed(0) : value.toFixed(1);
  return `${text} ${UNITS[unit]}`;
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** "12.3 MB of 300 MB · 45.1 MB/s · 6 s left"; the rate and time only once a rate is known. */
export function progressLine(sent, total, rate) {
  const parts = [`${formatBytes(sent)} of ${formatBytes(total)}`];
  if (rate > 0 && sent < total) {
    parts.push(`${formatBytes(rate)}/s`, `${formatDuration((total - sent) / rate)} left`);
  }
  return parts.join(' · ');
}

/**
 * Bytes per second over the last few seconds, so one slow or fast chunk does not make the
 * number jump. `now` is in milliseconds (performance.now()).
 */
export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(now, bytes) {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  reset() {
    this.samples = [];
  }

  rate() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    const seconds = (t1 - t0) / 1000;
    return seconds >= 0.5 ? Math.max(0, (b1 - b0) / seconds) : 0;
  }
}
