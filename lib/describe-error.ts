// An unknown thrown value as one line for a log field or a status message: the message, the code
// a caller may act on (errno code, HTTP status), and the causes behind it (a fetch "failed" says
// nothing; its cause says ECONNREFUSED). Never throws, whatever it is given.

const MAX_LENGTH = 1000;
const MAX_DEPTH = 5;

export function describeError(err: unknown): string {
  const text = describe(err, 0)
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .trim();
  return text.length > MAX_LENGTH ? `${text.slice(0, MAX_LENGTH - 1)}…` : text;
}

function describe(err: unknown, depth: number): string {
  if (err === undefined || err === null) return String(err);
  if (typeof err !== 'object') return typeof err === 'string' ? err : safeString(err);
  const e = err as {
    message?: unknown;
    code?: unknown;
    statusCode?: unknown;
    status?: unknown;
    body?: unknown;
    errors?: unknown;
    cause?: unknown;
    name?: unknown;
  };
  let message = typeof e.message === 'string' ? e.message : '';
  // A response body's own message (a Kubernetes Status, a JSON error) says more than "HTTP 409".
  const bodyMessage = messageOfBody(e.body);
  if (bodyMessage && !message.includes(bodyMessage)) message = message ? `${message}: ${bodyMessage}` : bodyMessage;
  // undici's connect error to several addresses is an AggregateError with an empty message.
  if (!message && Array.isArray(e.errors) && e.errors.length > 0 && depth < MAX_DEPTH) {
    message = e.errors.map((x) => describe(x, depth + 1)).join('; ');
  }
  if (!message) message = err instanceof Error ? err.name : safeString(err);
  const code = [e.code, e.statusCode, e.status].find((c) => (typeof c === 'string' && c !== '') || typeof c === 'number');
  if (code !== undefined && !message.includes(String(code))) message = `${message} (${String(code)})`;
  if (e.cause !== undefined && depth < MAX_DEPTH) {
    const cause = describe(e.cause, depth + 1);
    if (cause && !message.includes(cause)) message = `${message}: ${cause}`;
  }
  return message;
}

function messageOfBody(body: unknown): string {
  if (typeof body === 'string') {
    try {
      return messageOfBody(JSON.parse(body) as unknown);
    } catch {
      return body.length > 200 ? `${body.slice(0, 200)}…` : body;
    }
  }
  if (body !== null && typeof body === 'object') {
    const m = (body as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  }
  return '';
}

function safeString(v: unknown): string {
  try {
    if (typeof v === 'object') {
      const json = JSON.stringify(v);
      if (json !== undefined && json !== '{}') return json;
    }
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
