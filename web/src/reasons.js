// Plain-language reasons for what the server answered, shown after "Failed: ", and the rule
// for which answers are worth retrying. Pure functions: status, body and method in, words out.

const MAX_REASON = 200;

/** The message in a server's body: JSON {"error": ...} (or FastAPI's {"detail": ...}), or plain text. */
export function serverMessage(body) {
  const text = String(body || '').trim();
  if (!text) return '';
  try {
    const json = JSON.parse(text);
    const message = json && (json.error || json.detail || json.message);
    if (typeof message === 'string') return message.trim().slice(0, MAX_REASON);
  } catch {
    // Not JSON: the text itself is the message.
  }
  if (text.startsWith('<')) return ''; // an HTML error page says nothing a row can show
  return text.slice(0, MAX_REASON);
}

/** Why a request with this status failed, in words an officer can act on. */
export function reasonForStatus(status, body, { creation = false } = {}) {
  switch (status) {
    case 401:
      return 'your session has expired: sign in again';
    case 403:
      return 'you are no longer assigned to this case';
    case 404:
      if (creation) return 'this case is closed or not assigned to you';
      break;
    case 413:
      return 'file too large for this server';
    case 507:
      return "the server's storage is full; retrying";
    default:
      break;
  }
  return serverMessage(body) || `the server answered ${status}`;
}

/** Network drops, server errors, a full disk, a lock or an offset race: try again later. */
export function isRetryable(status) {
  return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
}

/** What a row's detail line says while waiting to retry after `status`. */
export function retryMessage(status, seconds) {
  const when = seconds > 0 ? `retrying in ${seconds} s` : 'retrying now';
  if (status === 0) return `Server unreachable, ${when}`;
  if (status === 507) return `The server's storage is full, ${when}`;
  if (status === 409 || status === 423) return `Upload busy on the server, ${when}`;
  return `Server error (${status}), ${when}`;
}

/** The status, body and method of a tus-js-client error (DetailedError), or of a plain Error. */
export function describeTusError(err) {
  const res = err && err.originalResponse;
  const req = err && err.originalRequest;
  return {
    status: res ? res.getStatus() : 0,
    body: res ? res.getBody() : '',
    method: req ? req.getMethod() : '',
    fromRequest: Boolean(req),
  };
}

/** The reason for a tus-js-client error that will not be retried. */
export function reasonForTusError(err) {
  const { status, body, method, fromRequest } = describeTusError(err);
  if (!fromRequest) return (err && err.message) || 'unexpected error';
  if (status === 0) return 'server unreachable';
  return reasonForStatus(status, body, { creation: method === 'POST' });
}
