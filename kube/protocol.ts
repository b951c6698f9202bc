// The pure half of the Kubernetes client: where the API server is, the paths it is asked for,
// what its lists, watch streams and Status objects mean, and the errors they become. No I/O here.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

export type Env = Record<string, string | undefined>;

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Where the pod's service-account volume (token, ca.crt) is mounted: the standard path, unless
 * THOUGHTGATE_SERVICEACCOUNT_DIR says otherwise (a pod that mounts it elsewhere; the e2e tests,
 * which play the kubelet and "mount" a TokenRequest token from a directory).
 */
export function serviceAccountDir(env: Env): string {
  return env.THOUGHTGATE_SERVICEACCOUNT_DIR?.trim() || SERVICE_ACCOUNT_DIR;
}

/**
 * The API server URL from the in-cluster environment, or an error saying what is missing.
 * An IPv6 service host (IPv6 or dual-stack clusters) needs brackets in a URL.
 */
export function inClusterServer(env: Env): string | { error: string } {
  const host = env.KUBERNETES_SERVICE_HOST?.trim();
  const port = env.KUBERNETES_SERVICE_PORT?.trim() || '443';
  if (!host) return { error: 'KUBERNETES_SERVICE_HOST is not set: not running in a Kubernetes pod (pass the server URL explicitly)' };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return { error: `KUBERNETES_SERVICE_PORT is not a port: "${port}"` };
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let url: URL;
  try {
    url = new URL(`https://${bracketed}:${port}`);
  } catch {
    return { error: `KUBERNETES_SERVICE_HOST is not a host: "${host}"` };
  }
  return url.origin;
}

// ---------- objects ----------

/** client-node's ObjectMeta as it is on the wire: its Date fields are RFC 3339 strings. */
export type ObjectMeta = Omit<V1ObjectMeta, 'creationTimestamp' | 'deletionTimestamp'> & { creationTimestamp?: string; deletionTimestamp?: string };

/** What every object this client reads has: client-node's object shape, as JSON, with a name. */
export type KubeObject = Omit<KubernetesObject, 'metadata'> & { metadata: ObjectMeta & { name: string } };

export type WatchEvent<T extends KubeObject = KubeObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** The server's "you are up to date as of this resourceVersion"; carries no object. */
  | { type: 'BOOKMARK'; resourceVersion: string };

/** The check an object passes before it is handed on: a name at least (the default). */
export type ObjectCheck<T extends KubeObject> = (v: unknown) => v is T;

export function hasName(v: unknown): v is KubeObject {
  if (!v || typeof v !== 'object') return false;
  const m = (v as { metadata?: unknown }).metadata;
  return !!m && typeof m === 'object' && typeof (m as { name?: unknown }).name === 'string';
}

/** The store key of an object: namespace/name, or name for cluster-scoped objects. */
export function objectKey(name: string, namespace?: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

// ---------- errors ----------

export type KubeErrorKind =
  /** The server answered with an error status (see `status` and `category`). */
  | 'http'
  /** The resourceVersion is too old (410 Gone, or an ERROR event with code 410): list again. */
  | 'gone'
  /** Could not connect, the connection broke, or a timeout. */
  | 'network'
  /** The server sent something this client cannot read (not JSON, a line over the bound...). */
  | 'protocol'
  /** Local setup: token or CA file unreadable, no server URL. */
  | 'config';

/** What a caller does about an error: the statuses a controller branches on, by name. */
export type KubeErrorCategory =
  | 'not-found' // 404
  | 'conflict' // 409: name taken, or a stale resourceVersion on update
  | 'gone' // 410
  | 'invalid' // 400, 422
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'throttled' // 429: wait retryAfterMs
  | 'server' // 5xx: retry with backoff (retryAfterMs when the server said)
  | 'network'
  | 'protocol'
  | 'config'
  | 'other';

export class KubeError extends Error {
  override readonly name = 'KubeError';
  constructor(
    readonly kind: KubeErrorKind,
    message: string,
    readonly status?: number,
    /** Status.reason from the server, e.g. "Forbidden", "Expired". */
    readonly reason?: string,
    options?: { cause?: unknown; retryAfterMs?: number; tooLarge?: boolean },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
    this.tooLarge = options?.tooLarge === true;
  }

  /** The response was over the transport's maxBodyBytes (a list is retried in smaller pages). */
  readonly tooLarge: boolean;

  /** From a Retry-After header (429, 503) or a Status's details.retryAfterSeconds. */
  readonly retryAfterMs: number | undefined;

  get category(): KubeErrorCategory {
    return categoryOf(this.kind, this.status);
  }

  /** Worth trying again unchanged: network trouble, throttling, a server error, 410 (after a relist). */
  get retryable(): boolean {
    return ['network', 'throttled', 'server', 'gone'].includes(this.category);
  }
}

export function categoryOf(kind: KubeErrorKind, status: number | undefined): KubeErrorCategory {
  if (kind === 'gone') return 'gone';
  if (kind !== 'http') return kind;
  switch (status) {
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 400:
    case 422:
      return 'invalid';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 429:
      return 'throttled';
  }
  return status !== undefined && status >= 500 ? 'server' : 'other';
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeError && err.category === 'not-found';
export const isConflict = (err: unknown): boolean => err instanceof KubeError && err.category === 'conflict';

/**
 * Retry-After in ms: delta-seconds or an HTTP date (RFC 9110), bounded to an hour so a broken
 * header cannot park a watch for good. Undefined when absent or unreadable.
 */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  const ms = /^\s*\d+\s*$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), 3_600_000) : undefined;
}

interface Status {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { retryAfterSeconds?: number };
}

/**
 * A readable error for a non-2xx response; `body` is the response text (a Status, usually);
 * `rbacHint` says what a 403 is missing; `retryAfter` is the Retry-After header.
 */
export function errorFromResponse(
  status: number,
  body: string,
  what: string,
  rbacHint = 'the verb on this resource',
  retryAfter?: string | string[],
): KubeError {
  let s: Status = {};
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object') s = parsed as Status;
  } catch {
    // not a Status: e.g. a proxy's HTML page; keep a short excerpt below
  }
  const detail = s.message ?? body.slice(0, 200).trim();
  if (status === 410) return new KubeError('gone', `${what}: ${detail || 'resourceVersion too old'} (410)`, status, s.reason ?? 'Gone');
  let hint = '';
  if (status === 401) hint = ' — the credentials were rejected (expired, revoked, or not of this cluster)';
  if (status === 403) hint = ` — RBAC: the ServiceAccount needs ${rbacHint}`;
  const fromStatus = typeof s.details?.retryAfterSeconds === 'number' ? s.details.retryAfterSeconds * 1000 : undefined;
  const retryAfterMs = parseRetryAfter(retryAfter) ?? fromStatus;
  return new KubeError(
    'http',
    `${what}: HTTP ${status}${s.reason ? ` ${s.reason}` : ''}: ${detail}${hint}`,
    status,
    s.reason,
    retryAfterMs !== undefined ? { retryAfterMs } : undefined,
  );
}

// ---------- paths ----------

/** A kind of resource: enough to build its paths. */
export interface ResourceType {
  /** "v1" for the core group, else "group/version". */
  apiVersion: string;
  /** The path segment: "configmaps". */
  plural: string;
  /** Singular, for messages: "ConfigMap". */
  kind: string;
  namespaced: boolean;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function checkName(what: string, v: string): void {
  // Anything else could walk the URL path (".." or "/") or fail obscurely at the server.
  if (!NAME.test(v) || v.length > 253) throw new KubeError('config', `invalid ${what} "${v}"`);
}

/**
 * The path of a collection (no name) or an object, optionally a subresource ("status"). A
 * namespaced type without a namespace is the all-namespaces collection (list and watch only).
 */
export function resourcePath(rt: ResourceType, at: { namespace?: string; name?: string; subresource?: string } = {}): string {
  const base = rt.apiVersion === 'v1' ? '/api/v1' : `/apis/${rt.apiVersion}`;
  let p = base;
  if (rt.namespaced && at.namespace !== undefined) {
    checkName('namespace', at.namespace);
    p += `/namespaces/${at.namespace}`;
  }
  p += `/${rt.plural}`;
  if (at.name !== undefined) {
    checkName('name', at.name);
    p += `/${at.name}`;
    if (at.subresource !== undefined) {
      if (!/^[a-z]+$/.test(at.subresource)) throw new KubeError('config', `invalid subresource "${at.subresource}"`);
      p += `/${at.subresource}`;
    }
  }
  return p;
}

/** The type a collection path ("/api/v1/configmaps", "/apis/g/v/namespaces/ns/things") names. */
export function resourceTypeFromPath(path: string): { type: ResourceType; namespace?: string } {
  const m = /^\/(?:api\/(v1)|apis\/([a-z0-9.-]+\/[a-z0-9]+))(?:\/namespaces\/([a-z0-9][-a-z0-9.]*))?\/([a-z0-9]+)$/.exec(path);
  if (!m) throw new KubeError('config', `not a collection path: ${path}`);
  const [, core, grouped, namespace, plural] = m;
  // Whether the type is namespaced does not change a collection's path; kind is for messages.
  const type: ResourceType = { apiVersion: core ?? grouped!, plural: plural!, kind: plural!, namespaced: true };
  return namespace !== undefined ? { type, namespace } : { type };
}

/** Which objects of a collection: `key=value` labels (checked) or a selector string as kubectl takes it. */
export interface Selector {
  labelSelector?: Record<string, string> | string;
  fieldSelector?: string;
}

function labelSelectorText(sel: Record<string, string> | string): string {
  if (typeof sel === 'string') return sel;
  return Object.entries(sel)
    .map(([k, v]) => {
      if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k) || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) || v.length > 63) {
        throw new KubeError('config', `invalid label selector ${k}=${v}`);
      }
      return `${k}=${v}`;
    })
    .join(',');
}

/** A collection path with its selectors (a list). */
export function listPath(collection: string, sel: Selector = {}): string {
  const q: string[] = [];
  const labels = sel.labelSelector !== undefined ? labelSelectorText(sel.labelSelector) : '';
  if (labels) q.push(`labelSelector=${encodeURIComponent(labels)}`);
  if (sel.fieldSelector) q.push(`fieldSelector=${encodeURIComponent(sel.fieldSelector)}`);
  return q.length ? `${collection}?${q.join('&')}` : collection;
}

/** A watch of the same selection from `resourceVersion` ('' = from now), with bookmarks. */
export function watchPath(collection: string, sel: Selector, resourceVersion: string, timeoutSeconds: number): string {
  if (!/^\d*$/.test(resourceVersion)) throw new KubeError('config', `invalid resourceVersion "${resourceVersion}"`);
  const params = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(Math.max(1, Math.floor(timeoutSeconds))) });
  if (resourceVersion) params.set('resourceVersion', resourceVersion);
  const list = listPath(collection, sel);
  return `${list}${list.includes('?') ? '&' : '?'}${params.toString()}`;
}

/** client-go's spread of server-side watch timeouts: 5–10 minutes, so watchers do not reconnect in waves. */
export function watchTimeoutSeconds(random: () => number = Math.random): number {
  return Math.floor(300 + random() * 300);
}

// ---------- bodies ----------

function parseJson(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new KubeError('protocol', `${what}: response is not JSON`);
  }
}

/** One object in a response body, checked with `is`. */
export function decodeObject<T extends KubeObject>(body: string, what: string, is: ObjectCheck<T>, kind: string): T {
  const v = parseJson(body, what);
  if (!is(v)) throw new KubeError('protocol', `${what}: response is not ${kind}`);
  return v;
}

/**
 * Every object of a list response that passes `is`, the list's resourceVersion, and its continue
 * token (a paginated list). Objects in a list carry no kind: it is filled in from the list's.
 */
export function decodeList<T extends KubeObject>(body: string, what: string, is: ObjectCheck<T>): { items: T[]; resourceVersion: string; continue?: string } {
  const v = parseJson(body, what);
  const list = v as { kind?: unknown; apiVersion?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
  const rv = list?.metadata?.resourceVersion;
  if (typeof rv !== 'string' || !Array.isArray(list.items)) throw new KubeError('protocol', `${what}: response is not a list`);
  const cont = typeof list.metadata?.continue === 'string' && list.metadata.continue ? list.metadata.continue : undefined;
  return { items: list.items.filter(is), resourceVersion: rv, ...(cont ? { continue: cont } : {}) };
}

/**
 * One line of a watch stream. An ERROR event becomes a thrown KubeError ('gone' for 410, after
 * which the caller must list again); unknown types are ignored (null) as client-go does.
 */
export function decodeWatchLine<T extends KubeObject = KubeObject>(
  line: string,
  is: ObjectCheck<T> = hasName as ObjectCheck<T>,
  kind = 'an object',
): WatchEvent<T> | null {
  let v: { type?: unknown; object?: unknown };
  try {
    v = JSON.parse(line) as typeof v;
  } catch {
    throw new KubeError('protocol', `watch: a line is not JSON: ${line.slice(0, 80)}`);
  }
  if (!v || typeof v !== 'object') throw new KubeError('protocol', 'watch: an event is not an object');
  switch (v.type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      if (!is(v.object)) throw new KubeError('protocol', `watch: ${v.type} event without ${kind}`);
      return { type: v.type, object: v.object };
    case 'BOOKMARK': {
      const rv = (v.object as KubernetesObject | undefined)?.metadata?.resourceVersion;
      if (typeof rv !== 'string') throw new KubeError('protocol', 'watch: BOOKMARK without a resourceVersion');
      return { type: 'BOOKMARK', resourceVersion: rv };
    }
    case 'ERROR': {
      const s = (v.object ?? {}) as Status;
      const code = typeof s.code === 'number' ? s.code : 500;
      if (code === 410) throw new KubeError('gone', `watch: ${s.message ?? 'resourceVersion too old'} (410)`, 410, s.reason ?? 'Expired');
      throw errorFromResponse(code, JSON.stringify(s), 'watch (ERROR event)');
    }
    default:
      return null;
  }
}

/**
 * Splits a byte stream into lines with a bound on line length: a line the server never ends
 * must not grow memory without limit. Lines are decoded as UTF-8 only when complete, so a
 * multi-byte character split across chunks stays whole.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(readonly maxLineBytes: number) {}

  /** The complete lines in `chunk` (after what was buffered); blank lines are dropped. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.take(chunk.subarray(start, nl));
      const line = (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)).toString('utf8').replace(/\r$/, '');
      this.parts = [];
      this.size = 0;
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
    return lines;
  }

  /** Bytes of an unfinished line (a stream that ends with some is cut short). */
  get pending(): number {
    return this.size;
  }

  private take(b: Buffer): void {
    if (this.size + b.length > this.maxLineBytes) {
      this.parts = [];
      this.size = 0;
      throw new KubeError('protocol', `watch: a line exceeds ${this.maxLineBytes} bytes`);
    }
    // Copy: the chunk's memory belongs to the stream, and a small slice would pin all of it.
    if (b.length > 0) {
      this.parts.push(Buffer.from(b));
      this.size += b.length;
    }
  }
}
