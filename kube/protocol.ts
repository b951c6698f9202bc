// The pure half of the sidecar's Kubernetes client: where the API server is, the paths it is asked
// for, what its watch stream and Status objects mean, and the errors they become. No I/O here.

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

/** A ConfigMap as far as this client cares. */
export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export type WatchEvent<T extends KubeObjectLike = ConfigMap> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** The server's "you are up to date as of this resourceVersion"; carries no object. */
  | { type: 'BOOKMARK'; resourceVersion: string };

/** What every object this client reads has. */
export interface KubeObjectLike {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

/**
 * An ApprovalRequest (thoughtgate.io/v1alpha1) as this client carries it: spec and status are
 * checked by the caller (sidecar/approvals/cluster-backend.ts), not here.
 */
export interface ApprovalRequestObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export type KubeErrorKind =
  /** The server answered with an error status (see `status`). */
  | 'http'
  /** The resourceVersion is too old (410 Gone, or an ERROR event with code 410): list again. */
  | 'gone'
  /** Could not connect, the connection broke, or a timeout. */
  | 'network'
  /** The server sent something this client cannot read (not JSON, a line over the bound...). */
  | 'protocol'
  /** Local setup: token or CA file unreadable, no server URL. */
  | 'config';

export class KubeError extends Error {
  override readonly name = 'KubeError';
  constructor(
    readonly kind: KubeErrorKind,
    message: string,
    readonly status?: number,
    /** Status.reason from the server, e.g. "Forbidden", "Expired". */
    readonly reason?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function checkName(what: string, v: string): void {
  // Anything else could walk the URL path (".." or "/") or fail obscurely at the server.
  if (!NAME.test(v) || v.length > 253) throw new KubeError('config', `invalid ${what} "${v}"`);
}

export function configMapPath(namespace: string, name: string): string {
  checkName('namespace', namespace);
  checkName('name', name);
  return `/api/v1/namespaces/${namespace}/configmaps/${name}`;
}

/** The list of at most one ConfigMap: it has a resourceVersion even when the ConfigMap is absent. */
export function configMapListPath(namespace: string, name: string): string {
  checkName('namespace', namespace);
  checkName('name', name);
  // A fieldSelector on metadata.name is what lets RBAC `resourceNames` authorize a list or watch.
  return `/api/v1/namespaces/${namespace}/configmaps?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
}

function watchParams(resourceVersion: string, timeoutSeconds: number): string {
  if (!/^\d*$/.test(resourceVersion)) throw new KubeError('config', `invalid resourceVersion "${resourceVersion}"`);
  const params = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(Math.max(1, Math.floor(timeoutSeconds))) });
  if (resourceVersion) params.set('resourceVersion', resourceVersion);
  return params.toString();
}

export function configMapWatchPath(namespace: string, name: string, resourceVersion: string, timeoutSeconds: number): string {
  return `${configMapListPath(namespace, name)}&${watchParams(resourceVersion, timeoutSeconds)}`;
}

export const APPROVAL_REQUESTS_API = '/apis/thoughtgate.io/v1alpha1';

/** The namespace's ApprovalRequests collection (create goes here). */
export function approvalRequestsPath(namespace: string): string {
  checkName('namespace', namespace);
  return `${APPROVAL_REQUESTS_API}/namespaces/${namespace}/approvalrequests`;
}

export function approvalRequestPath(namespace: string, name: string): string {
  checkName('name', name);
  return `${approvalRequestsPath(namespace)}/${name}`;
}

/** `key=value` label selectors only (what a sidecar needs: its own pod's requests). */
export function approvalRequestsListPath(namespace: string, labelSelector: Record<string, string>): string {
  const parts = Object.entries(labelSelector).map(([k, v]) => {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k) || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) || v.length > 63) {
      throw new KubeError('config', `invalid label selector ${k}=${v}`);
    }
    return `${k}=${v}`;
  });
  const base = approvalRequestsPath(namespace);
  return parts.length ? `${base}?labelSelector=${encodeURIComponent(parts.join(','))}` : base;
}

export function approvalRequestsWatchPath(namespace: string, labelSelector: Record<string, string>, resourceVersion: string, timeoutSeconds: number): string {
  const list = approvalRequestsListPath(namespace, labelSelector);
  return `${list}${list.includes('?') ? '&' : '?'}${watchParams(resourceVersion, timeoutSeconds)}`;
}

interface Status {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

/** A readable error for a non-2xx response; `body` is the response text (a Status, usually). */
export function errorFromResponse(status: number, body: string, what: string, rbacHint = 'get, list and watch on this ConfigMap'): KubeError {
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
  if (status === 401) hint = ' — the ServiceAccount token was rejected (expired, revoked, or not a token of this cluster)';
  if (status === 403) hint = ` — RBAC: the ServiceAccount needs ${rbacHint}`;
  return new KubeError('http', `${what}: HTTP ${status}${s.reason ? ` ${s.reason}` : ''}: ${detail}${hint}`, status, s.reason);
}

function hasName(v: unknown): v is KubeObjectLike {
  if (!v || typeof v !== 'object') return false;
  const m = (v as { metadata?: unknown }).metadata;
  return !!m && typeof m === 'object' && typeof (m as { name?: unknown }).name === 'string';
}

export function isApprovalRequest(v: unknown): v is ApprovalRequestObject {
  if (!hasName(v)) return false;
  const { spec, status } = v as { spec?: unknown; status?: unknown };
  const objOrAbsent = (x: unknown) => x === undefined || x === null || (typeof x === 'object' && !Array.isArray(x));
  return objOrAbsent(spec) && objOrAbsent(status);
}

function isConfigMap(v: unknown): v is ConfigMap {
  if (!v || typeof v !== 'object') return false;
  const m = (v as { metadata?: unknown }).metadata;
  if (!m || typeof m !== 'object' || typeof (m as { name?: unknown }).name !== 'string') return false;
  const data = (v as { data?: unknown }).data;
  return data === undefined || data === null || (typeof data === 'object' && !Array.isArray(data));
}

/** The ConfigMap in a list response (at most one: the list is by name), and the list's resourceVersion. */
export function decodeList(body: string, what: string): { item: ConfigMap | null; resourceVersion: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new KubeError('protocol', `${what}: response is not JSON`);
  }
  const list = v as { metadata?: { resourceVersion?: unknown }; items?: unknown };
  const rv = list?.metadata?.resourceVersion;
  if (typeof rv !== 'string' || !Array.isArray(list.items)) throw new KubeError('protocol', `${what}: response is not a list`);
  const item = list.items.find(isConfigMap) ?? null;
  return { item, resourceVersion: rv };
}

/** Every object of a list response that passes `is`, and the list's resourceVersion. */
export function decodeListOf<T>(body: string, what: string, is: (v: unknown) => v is T): { items: T[]; resourceVersion: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new KubeError('protocol', `${what}: response is not JSON`);
  }
  const list = v as { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
  const rv = list?.metadata?.resourceVersion;
  if (typeof rv !== 'string' || !Array.isArray(list.items)) throw new KubeError('protocol', `${what}: response is not a list`);
  return { items: list.items.filter(is), resourceVersion: rv };
}

/**
 * One line of a watch stream. An ERROR event becomes a thrown KubeError ('gone' for 410, after
 * which the caller must list again); unknown types are ignored (null) as client-go does.
 */
export function decodeWatchLine(line: string): WatchEvent | null {
  return decodeWatchLineOf(line, isConfigMap, 'a ConfigMap');
}

/** decodeWatchLine for objects that pass `is` (named `kind` in errors, with its article). */
export function decodeWatchLineOf<T extends KubeObjectLike>(line: string, is: (v: unknown) => v is T, kind: string): WatchEvent<T> | null {
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
      const rv = (v.object as KubeObjectLike | undefined)?.metadata?.resourceVersion;
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

/**
 * Exponential backoff with "equal jitter": attempt 0 waits between base/2 and base, each attempt
 * doubles that up to `max`. Jitter keeps the sidecars of a whole cluster from reconnecting to a
 * restarted API server in lockstep; the floor keeps one from spinning.
 */
export function backoffDelay(attempt: number, baseMs = 250, maxMs = 30_000, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
