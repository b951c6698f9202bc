// The one way ThoughtGate talks HTTP to a Kubernetes API server: undici's Pool and request(),
// imported by file path like the sidecar's upstream client (@kubernetes/client-node would cost
// the sidecar tens of MiB, see docs/performance.md). Credentials come from outside: the pod's
// ServiceAccount (inClusterCredentials, the sidecar) or a kubeconfig (the operator adapts
// client-node's KubeConfig, operator/kube-transport.ts).
import { readFile } from 'node:fs/promises';
import type { Dispatcher, Pool } from 'undici';
import apiRequest from 'undici/lib/api/api-request.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import { inClusterServer, KubeError, serviceAccountDir, type Env } from './protocol.js';
import { BodyError, readBodyText } from '../lib/read-body.js';

/** TLS material for the connection to the API server. */
export interface TlsMaterial {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface Credentials {
  /** Read when a connection pool is made: at the start, and again after a TLS verification failure. */
  tls(): Promise<TlsMaterial>;
  /**
   * The Authorization header for the next request (undefined: none, e.g. a client certificate).
   * `refresh` after a 401: re-read it, since it may have rotated under us.
   */
  authorization(refresh: boolean): Promise<string | undefined>;
  /** For messages: where these come from ("ServiceAccount token /var/run/...", "kubeconfig user x"). */
  describe: string;
}

export interface InClusterOptions {
  /** Bearer token file; default the projected ServiceAccount token. */
  tokenFile?: string;
  /** PEM bundle that signed the server's certificate; default the ServiceAccount's ca.crt. */
  caFile?: string;
  env?: Env;
  /** Re-read the token file at least this often (ms). Default 60 000. */
  tokenRefreshMs?: number;
}

/**
 * The pod's ServiceAccount: the projected token, re-read every minute and after a 401 (the
 * kubelet rotates it), and the cluster CA, re-read when TLS verification fails (it may rotate).
 */
export function inClusterCredentials(o: InClusterOptions = {}): Credentials {
  const env = o.env ?? process.env;
  const tokenFile = o.tokenFile ?? `${serviceAccountDir(env)}/token`;
  const caFile = o.caFile ?? `${serviceAccountDir(env)}/ca.crt`;
  const refreshMs = o.tokenRefreshMs ?? 60_000;
  let token: { value: string; readAt: number } | null = null;
  return {
    describe: `ServiceAccount token ${tokenFile} and CA ${caFile}`,
    async tls() {
      try {
        return { ca: await readFile(caFile) };
      } catch (err) {
        throw new KubeError('config', `cannot read the cluster CA ${caFile}: ${(err as Error).message}`, undefined, undefined, { cause: err });
      }
    },
    async authorization(refresh) {
      if (token && !refresh && Date.now() - token.readAt < refreshMs) return `Bearer ${token.value}`;
      try {
        const value = (await readFile(tokenFile, 'utf8')).trim();
        if (!value) throw new Error('file is empty');
        token = { value, readAt: Date.now() };
      } catch (err) {
        // The kubelet replaces the file atomically, so a failed read is rare; keep a token we have.
        if (!token)
          throw new KubeError('config', `cannot read the ServiceAccount token ${tokenFile}: ${(err as Error).message}`, undefined, undefined, { cause: err });
      }
      return `Bearer ${token.value}`;
    },
  };
}

export interface TransportOptions extends InClusterOptions {
  /** API server URL; default: in-cluster, from KUBERNETES_SERVICE_HOST/PORT. */
  server?: string;
  /** Default: inClusterCredentials(tokenFile, caFile, env, tokenRefreshMs). */
  credentials?: Credentials;
  /** TCP + TLS connect timeout (ms). Default 10 000. */
  connectTimeoutMs?: number;
  /** Whole-response bound for requests, and response-headers bound for watches (ms). Default 30 000. */
  requestTimeoutMs?: number;
  /**
   * Longest watch line (one event) and largest response body, in bytes. A ConfigMap holds at most
   * 1 MiB, but Go's JSON writes each <, > and & as a 6-byte \u003c escape, and Cedar policies are
   * full of them; 8 MiB leaves room for that. Default 8 MiB.
   */
  maxBodyBytes?: number;
  /** Connections to the server (each watch holds one). Default 4. */
  connections?: number;
  userAgent?: string;
  /** Sent on every request (a kubeconfig's Impersonate-User/-Group/-Uid/-Extra-*); an array repeats the header. */
  headers?: Record<string, string | string[]>;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Request {
  method?: Method;
  /** Path and query, starting with "/". */
  path: string;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
  /** For messages: "get ConfigMap ns/name". */
  what: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface StreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as it arrives (a watch); destroy() it to stop early. */
  stream: AsyncIterable<Buffer> & { destroy(): void };
}

export interface Transport {
  readonly server: string;
  readonly maxBodyBytes: number;
  /** The whole response; never throws for an HTTP status, only for network and local trouble. */
  request(req: Request): Promise<Response>;
  /**
   * The response as a stream when the status is 200, else read whole. No body timeout: a watch is
   * quiet for minutes by design, its liveness is the reflector's watchdog.
   */
  stream(req: Request): Promise<StreamResponse | Response>;
  /** The error a failed read of a streamed body should become. */
  networkError(err: unknown, what: string): KubeError;
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

export function createTransport(o: TransportOptions = {}): Transport {
  const resolved = o.server ?? inClusterServer(o.env ?? process.env);
  if (typeof resolved !== 'string') throw new KubeError('config', resolved.error);
  const url = new URL(resolved);
  const server = url.origin;
  // A kubeconfig's server may have a path (an API proxy such as Rancher's): paths go below it.
  const prefix = url.pathname.replace(/\/+$/, '');
  const creds = o.credentials ?? inClusterCredentials(o);
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  const requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
  const maxBodyBytes = o.maxBodyBytes ?? 8 * 1024 * 1024;
  const userAgent = o.userAgent ?? 'thoughtgate';

  let closed = false;
  let pool: Pool | null = null;
  let poolPending: Promise<Pool> | null = null;

  const getPool = (): Promise<Pool> => {
    if (closed) return Promise.reject(new KubeError('config', 'the Kubernetes client is closed'));
    if (pool) return Promise.resolve(pool);
    poolPending ??= (async () => {
      try {
        const tls = server.startsWith('https:') ? await creds.tls() : {};
        if (closed) throw new KubeError('config', 'the Kubernetes client is closed');
        pool = new PoolImpl(server, {
          connections: o.connections ?? 4,
          pipelining: 1,
          connect: { ...tls, timeout: connectTimeoutMs },
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

  /** Drops the pool so the next request reconnects and re-reads the TLS material. */
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
      return new KubeError('network', `${what}: TLS verification of ${server} failed (${code}); check the CA of ${creds.describe}`, undefined, undefined, {
        cause: err,
      });
    }
    const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    return new KubeError(
      'network',
      `${what}: ${timeout ? 'timed out' : 'failed'} talking to ${server}: ${code || (err as Error)?.message || String(err)}`,
      undefined,
      undefined,
      { cause: err },
    );
  };

  const readBody = async (res: Dispatcher.ResponseData, what: string): Promise<string> => {
    try {
      return await readBodyText(res.body, { limitBytes: maxBodyBytes, what });
    } catch (err) {
      if (!(err instanceof BodyError) || err.reason === 'aborted') throw networkError((err as BodyError).cause ?? err, what);
      // A list page over the bound is retried in smaller pages (kube/resource.ts); anything else is refused.
      throw new KubeError('protocol', `${what}: ${err.message}`, undefined, undefined, { cause: err, tooLarge: err.reason === 'too-large' });
    }
  };

  /**
   * Sends with the current credentials. A 401 makes it refresh them and, when they changed
   * (rotated under us), try once more; a 401 means the server did nothing, so this is safe for
   * writes too. A 401 that stays comes back with its body read.
   */
  const send = async (req: Request, watch: boolean): Promise<{ res: Dispatcher.ResponseData } | Response> => {
    for (let attempt = 0; ; attempt++) {
      const authorization = await creds.authorization(attempt > 0);
      const p = await getPool();
      req.signal?.throwIfAborted();
      let res: Dispatcher.ResponseData;
      try {
        res = await apiRequest.call(p, {
          path: prefix + req.path,
          method: req.method ?? 'GET',
          headers: {
            ...o.headers,
            ...(authorization ? { authorization } : {}),
            accept: 'application/json',
            'user-agent': userAgent,
            ...(req.contentType ? { 'content-type': req.contentType } : {}),
          },
          ...(req.body !== undefined ? { body: req.body } : {}),
          signal: req.signal,
          headersTimeout: requestTimeoutMs,
          bodyTimeout: watch ? 0 : requestTimeoutMs,
        });
      } catch (err) {
        if (req.signal?.aborted) throw req.signal.reason;
        throw networkError(err, req.what);
      }
      if (res.statusCode !== 401) return { res };
      const body = await readBody(res, req.what).catch(() => '');
      const unauthorized = { status: 401, headers: res.headers, body };
      if (attempt > 0) return unauthorized;
      const fresh = await creds.authorization(true).catch(() => authorization);
      if (fresh === authorization) return unauthorized;
    }
  };

  const whole = async (sent: { res: Dispatcher.ResponseData } | Response, req: Request): Promise<Response> => {
    if (!('res' in sent)) return sent;
    try {
      return { status: sent.res.statusCode, headers: sent.res.headers, body: await readBody(sent.res, req.what) };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw networkError(err, req.what);
    }
  };

  return {
    server,
    maxBodyBytes,
    networkError,
    async request(req) {
      return whole(await send(req, false), req);
    },
    async stream(req) {
      const sent = await send(req, true);
      if (!('res' in sent) || sent.res.statusCode !== 200) return whole(sent, req);
      return { status: 200, headers: sent.res.headers, stream: sent.res.body as unknown as StreamResponse['stream'] };
    },
    async close() {
      closed = true;
      let p = pool;
      if (!p && poolPending !== null) p = await poolPending.catch(() => null);
      pool = null;
      if (p) await p.destroy().catch(() => undefined);
    },
  };
}
