// A minimal Kubernetes API client for two jobs: read and watch one namespaced ConfigMap, and
// create, patch, list and watch the pod's own ApprovalRequests (cluster approvals).
// @kubernetes/client-node would cost the sidecar ~74 MiB; this is undici's Pool and request(),
// imported by file path like proxy/upstream.ts (see types/undici-pool.d.ts).
//
// Credentials follow the in-cluster conventions: the server from KUBERNETES_SERVICE_HOST/PORT,
// the projected ServiceAccount token (re-read every minute and after a 401, because the kubelet
// rotates it), and the cluster CA (re-read when TLS verification fails, in case it rotated).
import { readFile } from 'node:fs/promises';
import type { Dispatcher, Pool } from 'undici';
import apiRequest from 'undici/lib/api/api-request.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import {
  approvalRequestPath,
  approvalRequestsListPath,
  approvalRequestsPath,
  approvalRequestsWatchPath,
  configMapListPath,
  configMapPath,
  configMapWatchPath,
  decodeList,
  decodeListOf,
  decodeWatchLine,
  decodeWatchLineOf,
  errorFromResponse,
  inClusterServer,
  isApprovalRequest,
  serviceAccountDir,
  KubeError,
  LineSplitter,
  type ApprovalRequestObject,
  type ConfigMap,
  type Env,
  type KubeObjectLike,
  type WatchEvent,
} from './protocol.js';

export { KubeError } from './protocol.js';
export type { ApprovalRequestObject, ConfigMap, WatchEvent } from './protocol.js';

/** merge: RFC 7386 JSON merge patch (an object). json: RFC 6902 JSON patch (a list of operations). */
export type PatchType = 'merge' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = { merge: 'application/merge-patch+json', json: 'application/json-patch+json' };

/** What a sidecar may do to ApprovalRequests (the thoughtgate-sidecar Role grants exactly this). */
const APPROVALS_RBAC = 'create, get, list, watch and patch on approvalrequests.thoughtgate.io in its namespace (the thoughtgate-sidecar Role)';

export interface KubeClientOptions {
  /** API server URL; default: in-cluster, from KUBERNETES_SERVICE_HOST/PORT. */
  server?: string;
  /** Bearer token file; default the projected ServiceAccount token. */
  tokenFile?: string;
  /** PEM bundle that signed the server's certificate; default the ServiceAccount's ca.crt. */
  caFile?: string;
  env?: Env;
  /** Re-read the token file at least this often (ms). Default 60 000. */
  tokenRefreshMs?: number;
  /** TCP + TLS connect timeout (ms). Default 10 000. */
  connectTimeoutMs?: number;
  /** Whole-response bound for get/list, and response-headers bound for watches (ms). Default 30 000. */
  requestTimeoutMs?: number;
  /**
   * Longest watch line (one event) and largest get/list body, in bytes. A ConfigMap holds at most
   * 1 MiB, but Go's JSON writes each <, > and & as a 6-byte \u003c escape, and Cedar policies are
   * full of them; 8 MiB leaves room for that. Default 8 MiB.
   */
  maxBodyBytes?: number;
  userAgent?: string;
}

export interface WatchOptions {
  /** Ask the server to end the watch after this long (it does so cleanly; watch again). */
  timeoutSeconds?: number;
  /** Called once the server accepted the watch (200 and headers). */
  onOpen?: () => void;
}

export interface WatchEnd {
  /** The newest resourceVersion seen (from events and bookmarks): where to resume. */
  resourceVersion: string;
  /** Events delivered, bookmarks included. */
  events: number;
}

export interface KubeClient {
  readonly server: string;
  /** The ConfigMap, or null when it does not exist. */
  get(namespace: string, name: string, signal?: AbortSignal): Promise<ConfigMap | null>;
  /** The ConfigMap (or null) and the resourceVersion to watch from; works when the ConfigMap is absent. */
  list(namespace: string, name: string, signal?: AbortSignal): Promise<{ item: ConfigMap | null; resourceVersion: string }>;
  /**
   * Watches from `resourceVersion` ('' = from now, with the current object as ADDED). Resolves when
   * the server ends the stream (normal, every timeoutSeconds); rejects with a KubeError ('gone':
   * list again), or with `signal.reason` once aborted. `onEvent` is called in stream order; if it
   * throws, the watch ends with that error.
   */
  watch(namespace: string, name: string, resourceVersion: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal, opts?: WatchOptions): Promise<WatchEnd>;
  /** Creates an ApprovalRequest; a KubeError with status 409 when the name is taken. */
  createApprovalRequest(namespace: string, obj: ApprovalRequestObject, signal?: AbortSignal): Promise<ApprovalRequestObject>;
  /** The ApprovalRequest, or null when it does not exist. */
  getApprovalRequest(namespace: string, name: string, signal?: AbortSignal): Promise<ApprovalRequestObject | null>;
  /** Patches the main resource (never status: a sidecar may not write it). 404 is a KubeError. */
  patchApprovalRequest(namespace: string, name: string, patch: unknown, type: PatchType, signal?: AbortSignal): Promise<ApprovalRequestObject>;
  /** The namespace's ApprovalRequests matching every `label=value`, and the resourceVersion to watch from. */
  listApprovalRequests(namespace: string, labels: Record<string, string>, signal?: AbortSignal): Promise<{ items: ApprovalRequestObject[]; resourceVersion: string }>;
  /** Like watch(), for the ApprovalRequests matching `labels`. */
  watchApprovalRequests(
    namespace: string,
    labels: Record<string, string>,
    resourceVersion: string,
    onEvent: (e: WatchEvent<ApprovalRequestObject>) => void,
    signal: AbortSignal,
    opts?: WatchOptions,
  ): Promise<WatchEnd>;
  /** A raw authenticated GET: status and body text, never throwing for an HTTP status. */
  raw(path: string, signal?: AbortSignal): Promise<{ status: number; body: string }>;
  /** Closes all connections (in-flight requests fail). Idempotent. */
  close(): Promise<void>;
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface Sent {
  status: number;
  /** Null when the body was already read into `text`. */
  res: Dispatcher.ResponseData | null;
  text: string | null;
}

export function createKubeClient(o: KubeClientOptions = {}): KubeClient {
  const env = o.env ?? process.env;
  const resolved = o.server ?? inClusterServer(env);
  if (typeof resolved !== 'string') throw new KubeError('config', resolved.error);
  const server = new URL(resolved).origin;
  const tokenFile = o.tokenFile ?? `${serviceAccountDir(env)}/token`;
  const caFile = o.caFile ?? `${serviceAccountDir(env)}/ca.crt`;
  const tokenRefreshMs = o.tokenRefreshMs ?? 60_000;
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  const requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
  const maxBodyBytes = o.maxBodyBytes ?? 8 * 1024 * 1024;
  const userAgent = o.userAgent ?? 'thoughtgate-sidecar';

  let closed = false;
  let pool: Pool | null = null;
  let poolPending: Promise<Pool> | null = null;
  let token: { value: string; readAt: number } | null = null;

  const readToken = async (force: boolean): Promise<string> => {
    if (token && !force && Date.now() - token.readAt < tokenRefreshMs) return token.value;
    try {
      const value = (await readFile(tokenFile, 'utf8')).trim();
      if (!value) throw new Error('file is empty');
      token = { value, readAt: Date.now() };
      return value;
    } catch (err) {
      // The kubelet replaces the file atomically, so a failed read is rare; keep a token we have.
      if (token) return token.value;
      throw new KubeError('config', `cannot read the ServiceAccount token ${tokenFile}: ${(err as Error).message}`, undefined, undefined, { cause: err });
    }
  };

  const getPool = (): Promise<Pool> => {
    if (closed) return Promise.reject(new KubeError('config', 'the Kubernetes client is closed'));
    if (pool) return Promise.resolve(pool);
    poolPending ??= (async () => {
      try {
        let ca: Buffer | undefined;
        if (server.startsWith('https:')) {
          try {
            ca = await readFile(caFile);
          } catch (err) {
            throw new KubeError('config', `cannot read the cluster CA ${caFile}: ${(err as Error).message}`, undefined, undefined, { cause: err });
          }
        }
        if (closed) throw new KubeError('config', 'the Kubernetes client is closed');
        pool = new PoolImpl(server, {
          // One long-lived watch plus the occasional list: a handful of connections is plenty.
          connections: 4,
          pipelining: 1,
          connect: { ca, timeout: connectTimeoutMs },
          keepAliveTimeout: 30_000,
          headersTimeout: requestTimeoutMs,
        });
        return pool;
      } finally {
        poolPending = null;
      }
    })();
    return poolPending;
  };

  /** Drops the pool so the next request reconnects and re-reads the CA. */
  const resetPool = (): void => {
    const p = pool;
    pool = null;
    if (p) void p.destroy().catch(() => undefined);
  };

  const networkError = (err: unknown, what: string): KubeError => {
    if (err instanceof KubeError) return err;
    const code = (err as { code?: string } | null)?.code ?? '';
    if (TLS_VERIFY_CODES.has(code)) {
      resetPool();
      return new KubeError('network', `${what}: TLS verification of ${server} failed (${code}); is ${caFile} the cluster CA?`, undefined, undefined, { cause: err });
    }
    const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    return new KubeError('network', `${what}: ${timeout ? 'timed out' : 'failed'} talking to ${server}: ${code || (err as Error)?.message || String(err)}`, undefined, undefined, { cause: err });
  };

  /**
   * Sends a request (GET unless `write` says otherwise) with the current token. A 401 makes it
   * re-read the token file and, when the token changed (rotated under us), try once more with the
   * new one; a 401 means the server did nothing, so this is safe for writes too. A 401 that stays
   * comes back with its body already read (`text`), since reading it was needed to reuse the
   * connection.
   */
  const send = async (path: string, signal: AbortSignal | undefined, what: string, watch: boolean, write?: { method: 'POST' | 'PATCH'; contentType: string; body: string }): Promise<Sent> => {
    for (let attempt = 0; ; attempt++) {
      const bearer = await readToken(attempt > 0);
      const p = await getPool();
      signal?.throwIfAborted();
      let res: Dispatcher.ResponseData;
      try {
        res = await apiRequest.call(p, {
          path,
          method: write?.method ?? 'GET',
          headers: {
            authorization: `Bearer ${bearer}`,
            accept: 'application/json',
            'user-agent': userAgent,
            ...(write ? { 'content-type': write.contentType } : {}),
          },
          ...(write ? { body: write.body } : {}),
          signal,
          headersTimeout: requestTimeoutMs,
          // A watch is quiet for minutes by design; its liveness is the caller's watchdog.
          bodyTimeout: watch ? 0 : requestTimeoutMs,
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw networkError(err, what);
      }
      if (res.statusCode !== 401) return { status: res.statusCode, res, text: null };
      const text = await readBody(res, what).catch(() => '');
      if (attempt > 0) return { status: 401, res: null, text };
      const fresh = await readToken(true).catch(() => bearer);
      if (fresh === bearer) return { status: 401, res: null, text };
    }
  };

  const readBody = async (res: Dispatcher.ResponseData, what: string): Promise<string> => {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes) {
        res.body.destroy();
        throw new KubeError('protocol', `${what}: response exceeds ${maxBodyBytes} bytes`);
      }
      parts.push(chunk);
    }
    return Buffer.concat(parts, size).toString('utf8');
  };

  const getText = async (path: string, signal: AbortSignal | undefined, what: string, write?: Parameters<typeof send>[4]): Promise<{ status: number; body: string }> => {
    const sent = await send(path, signal, what, false, write);
    if (!sent.res) return { status: sent.status, body: sent.text ?? '' };
    try {
      return { status: sent.status, body: await readBody(sent.res, what) };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw networkError(err, what);
    }
  };

  /** client-go's spread: 5–10 minutes, so a fleet of watchers does not reconnect in waves. */
  function watchTimeout(opts: WatchOptions): number {
    return opts.timeoutSeconds ?? Math.floor(300 + Math.random() * 300);
  }

  function parseApprovalRequest(body: string, what: string): ApprovalRequestObject {
    let v: unknown;
    try {
      v = JSON.parse(body);
    } catch {
      throw new KubeError('protocol', `${what}: response is not JSON`);
    }
    if (!isApprovalRequest(v)) throw new KubeError('protocol', `${what}: response is not an ApprovalRequest`);
    return v;
  }

  async function watchStream<T extends KubeObjectLike>(
    path: string,
    what: string,
    rbacHint: string | undefined,
    decode: (line: string) => WatchEvent<T> | null,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
    opts: WatchOptions,
  ): Promise<WatchEnd> {
    const sent = await send(path, signal, what, true);
    const res = sent.res;
    if (!res || sent.status !== 200) {
      const text = sent.text ?? (res ? await readBody(res, what).catch(() => '') : '');
      throw errorFromResponse(sent.status, text, what, rbacHint);
    }
    opts.onOpen?.();
    const splitter = new LineSplitter(maxBodyBytes);
    let rv = resourceVersion;
    let events = 0;
    let callbackError: unknown = undefined;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        for (const line of splitter.push(chunk)) {
          const e = decode(line);
          if (!e) continue;
          rv = e.type === 'BOOKMARK' ? e.resourceVersion : (e.object.metadata.resourceVersion ?? rv);
          events++;
          try {
            onEvent(e);
          } catch (err) {
            callbackError = err;
            throw err;
          }
        }
      }
    } catch (err) {
      res.body.destroy();
      if (signal.aborted) throw signal.reason;
      if (err === callbackError) throw err;
      throw networkError(err, what);
    }
    if (signal.aborted) throw signal.reason;
    if (splitter.pending > 0) throw new KubeError('network', `${what}: the stream ended inside an event`);
    return { resourceVersion: rv, events };
  }

  return {
    server,

    async get(namespace, name, signal) {
      const what = `get ConfigMap ${namespace}/${name}`;
      const r = await getText(configMapPath(namespace, name), signal, what);
      if (r.status === 404) return null;
      if (r.status !== 200) throw errorFromResponse(r.status, r.body, what);
      try {
        return JSON.parse(r.body) as ConfigMap;
      } catch {
        throw new KubeError('protocol', `${what}: response is not JSON`);
      }
    },

    async list(namespace, name, signal) {
      const what = `list ConfigMap ${namespace}/${name}`;
      const r = await getText(configMapListPath(namespace, name), signal, what);
      if (r.status !== 200) throw errorFromResponse(r.status, r.body, what);
      return decodeList(r.body, what);
    },

    watch(namespace, name, resourceVersion, onEvent, signal, opts = {}) {
      const timeoutSeconds = watchTimeout(opts);
      return watchStream(configMapWatchPath(namespace, name, resourceVersion, timeoutSeconds), `watch ConfigMap ${namespace}/${name}`, undefined,
        decodeWatchLine, resourceVersion, onEvent, signal, opts);
    },

    async createApprovalRequest(namespace, obj, signal) {
      const what = `create ApprovalRequest ${namespace}/${obj.metadata.name}`;
      const r = await getText(approvalRequestsPath(namespace), signal, what, { method: 'POST', contentType: 'application/json', body: JSON.stringify(obj) });
      if (r.status !== 201 && r.status !== 200) throw errorFromResponse(r.status, r.body, what, APPROVALS_RBAC);
      return parseApprovalRequest(r.body, what);
    },

    async getApprovalRequest(namespace, name, signal) {
      const what = `get ApprovalRequest ${namespace}/${name}`;
      const r = await getText(approvalRequestPath(namespace, name), signal, what);
      if (r.status === 404) return null;
      if (r.status !== 200) throw errorFromResponse(r.status, r.body, what, APPROVALS_RBAC);
      return parseApprovalRequest(r.body, what);
    },

    async patchApprovalRequest(namespace, name, patch, type, signal) {
      const what = `patch ApprovalRequest ${namespace}/${name}`;
      const r = await getText(approvalRequestPath(namespace, name), signal, what, { method: 'PATCH', contentType: PATCH_CONTENT_TYPE[type], body: JSON.stringify(patch) });
      if (r.status !== 200) throw errorFromResponse(r.status, r.body, what, APPROVALS_RBAC);
      return parseApprovalRequest(r.body, what);
    },

    async listApprovalRequests(namespace, labels, signal) {
      const what = `list ApprovalRequests in ${namespace}`;
      const r = await getText(approvalRequestsListPath(namespace, labels), signal, what);
      if (r.status !== 200) throw errorFromResponse(r.status, r.body, what, APPROVALS_RBAC);
      return decodeListOf(r.body, what, isApprovalRequest);
    },

    watchApprovalRequests(namespace, labels, resourceVersion, onEvent, signal, opts = {}) {
      const timeoutSeconds = watchTimeout(opts);
      return watchStream(approvalRequestsWatchPath(namespace, labels, resourceVersion, timeoutSeconds), `watch ApprovalRequests in ${namespace}`, APPROVALS_RBAC,
        (line) => decodeWatchLineOf(line, isApprovalRequest, 'an ApprovalRequest'), resourceVersion, onEvent, signal, opts);
    },

    async raw(path, signal) {
      if (!path.startsWith('/')) throw new KubeError('config', `raw: path must start with "/": ${path}`);
      return getText(path, signal, `GET ${path.split('?')[0]}`);
    },

    async close() {
      closed = true;
      const p = pool ?? (poolPending ? await poolPending.catch(() => null) : null);
      pool = null;
      if (p) await p.destroy().catch(() => undefined);
    },
  };
}
