// The sidecar process: proxy listener (7467), admin listener (7469), the current config snapshot,
// and graceful shutdown. Config arrives from a ConfigProvider (a watched file standalone, the
// watched ConfigMap in a cluster); an invalid update never replaces a good snapshot.
import http from 'node:http';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_MAX_BUFFERED_BYTES, type Identity, type PolicyDocument } from '../api/config.js';
import type { RenderedCedar } from '../api/crds.js';
import { liftoffOnlyWasm } from '../lib/wasm-liftoff.js';
import { captureReadiness, createAdminServer } from './admin.js';
import { TLS_PORT, handleTlsConnection } from './capture/tls-passthrough.js';
import { transparentHandlers } from './capture/transparent.js';
import type { ApprovalBackend } from './approvals/backend.js';
import type { ApprovalChannelInfo } from './approvals/engine.js';
import { bufferedExecutor } from './approvals/upstream.js';
import { a2aApprovalHook, answerRelayThrough } from './approvals/a2a.js';
import { approvalInterceptor } from './approvals/interceptor.js';
import { adoptedOwner, createApprovalRuntime, type ApprovalRuntime } from './approvals/runtime.js';
import { UpstreamHealth } from './health.js';
import type { Logger } from '../lib/log.js';
import { createSidecarMetrics, type CaptureListener, type CaptureRefusal, type SidecarMetrics } from './metrics.js';
import { CorrelatedResponse, createRequestContext, type RequestContext } from './proxy/context.js';
import {
  forwardEgress,
  openTunnel,
  parseAbsolute,
  parseConnect,
  refuse,
  route,
  type Refusal,
  type Route,
  type RouteEnv,
  type Target,
} from './proxy/forward-proxy.js';
import { ByteBudget } from './proxy/budget.js';
import { checkHost, hostPolicy } from './proxy/hosts.js';
import { denyAll, handleMcp, replyError } from './proxy/mcp.js';
import { handleA2a, type A2aEnv, type A2aGovernedCall } from './a2a/handler.js';
import { a2aIsolationHooks } from './a2a/isolation.js';
import { pushUrlRefusals } from './a2a/push.js';
import { CardSkills } from './a2a/skills.js';
import type { TaskOwnerStore } from './a2a/task-store.js';
import { TaskOwners, taskOwnerMetrics } from './a2a/tasks.js';
import { refuseA2a, UNREAD } from './a2a/errors.js';
import { ownAddresses, Resolver } from './proxy/resolver.js';
import { createUpstreamClient, UpstreamPools, type UpstreamClient } from './proxy/upstream.js';
import { type IdleReclaim, reclaimWhenIdle } from './proxy/reclaim.js';
import { createSourceTokens } from './oauth/client-credentials.js';
import { systemClock } from '../lib/clock.js';
import { compileSnapshot, type CompiledSource, type Snapshot } from './snapshot.js';
import { createCredentialStore, type CredentialStore } from './credentials/store.js';
import { describeError } from '../lib/describe-error.js';
import { startAuditEvents, type AuditEventsOptions } from './audit/events.js';
import { createAuditRecorder } from './audit/recorder.js';
import { startTracing, type Tracer } from '../lib/tracing.js';
import { WARM_DELAY_MS, warmCedar } from './warm-cedar.js';

export type ConfigUpdate =
  /** `policy`: the GovernancePolicy the document is (cluster); `cedar`: its Cedar text as the operator parsed it. */
  | { ok: true; doc: PolicyDocument; identity: Identity; hash: string; origin: string; policy?: string; cedar?: RenderedCedar }
  /** An invalid document: reported, and the last good config keeps serving. */
  | { ok: false; errors: string[]; origin: string }
  /**
   * There is no config for this pod any more (the ConfigMap is gone, or no policy selects the
   * pod). Unlike an invalid document this is an authoritative answer: governed calls are denied.
   */
  | { ok: 'none'; reason: string; origin: string };

export interface ConfigProvider {
  /** Human description for logs, e.g. "file thoughtgate.yaml" or "ConfigMap ns/thoughtgate-config". */
  readonly description: string;
  start(onUpdate: (u: ConfigUpdate) => void): Promise<void> | void;
  close(): Promise<void> | void;
}

export interface SidecarOptions {
  port: number;
  adminPort: number;
  bind: string;
  /** Where the admin port listens; in a pod the kubelet probes it over the pod IP. Default: bind. */
  adminBind?: string;
  log: Logger;
  provider: ConfigProvider;
  drainTimeoutMs?: number;
  probeIntervalMs?: number;
  /**
   * Hand the heap back with a memory-reducing collection once quiet. The command (sidecar/main.ts)
   * turns it on; off by default where the sidecar shares its process (tests, in-process benches),
   * since the collection would be of their heap too.
   */
  idleReclaim?: boolean;
  /**
   * Where humans decide (gate 4): standaloneBackend() from approvals/standalone.ts, or the cluster
   * backend. Without one, calls that need approval are refused with -32006. The sidecar closes it.
   */
  approvals?: ApprovalBackend & ApprovalChannelInfo;
  /**
   * Host header values both listeners accept besides loopback names and their bind address
   * (`--allowed-hosts`); the config's server.allowedHosts adds to them.
   */
  allowedHosts?: readonly string[];
  /**
   * A captured pod (`--transparent-port`): the listeners the capture rules redirect the agent's
   * traffic to, on 127.0.0.1 and ::1, and the init container's state file /ready checks.
   */
  capture?: {
    transparentPort: number;
    /** The TLS passthrough listener; without it outbound 443 is rejected by the rules. */
    tlsPort?: number;
    stateFile: string;
    /** Where SNI destinations are dialled and checked: 443 (the only port redirected); tests use their own. */
    tlsUpstreamPort?: number;
  };
  /**
   * Cluster: audit mode's counts also go into Events regarding the GovernancePolicy that decided
   * (sidecar/audit/events.ts), which the operator sums into its status.audit. Standalone: metrics
   * and log fields only.
   */
  auditEvents?: AuditEventsOptions;
  /** --state-dir (standalone): the A2A task owner table's journal (a2a/task-store.ts), replayed at start. The sidecar closes it. */
  taskStore?: TaskOwnerStore;
  /** Where source credentials are read (sidecar/credentials/store.ts); default: a store over process.env and THOUGHTGATE_SECRETS_DIR. The sidecar closes it. */
  credentials?: CredentialStore;
  /**
   * Tracing (docs/observability.md): default from the OTEL_* environment (off unless an OTLP endpoint
   * is set). The sidecar shuts it down (flushing, bounded) when it closes.
   */
  tracer?: Tracer;
}

export interface Sidecar {
  port: number;
  adminPort: number;
  /** The capture listeners' ports (each bound on 127.0.0.1 and, when the host has it, ::1). */
  capture: { transparentPort: number; tlsPort: number | null } | null;
  metrics: SidecarMetrics;
  snapshot(): Snapshot | null;
  ready(): boolean;
  close(): Promise<void>;
}

/** How long a stopping sidecar waits for its last spans to be exported. */
const TRACING_SHUTDOWN_MS = 2000;

/** Requests in flight on one connection (HTTP/1.1 pipelining); MCP clients send one at a time. */
export const MAX_REQUESTS_PER_CONNECTION = 16;

const MCP_PATH = /^\/mcp\/([^/?#]+)\/?(?:\?.*)?$/;
/** `/a2a/<source>` and what follows it (the agent's own path layout, sidecar/a2a/classify.ts). */
const A2A_PATH = /^\/a2a\/([^/?#]+)(.*)$/s;

export async function startSidecar(o: SidecarOptions): Promise<Sidecar> {
  // Before the first undici connection (upstream, or the API server in a cluster, whose transport
  // cli.ts made but which connects only after a file read) compiles llhttp: ~10 MiB private less.
  liftoffOnlyWasm();
  const { log } = o;
  const metrics = createSidecarMetrics();
  const tracer =
    o.tracer ??
    (await startTracing(process.env, {
      defaultServiceName: 'thoughtgate-sidecar',
      onDropped: (n) => metrics.tracingSpansDropped.inc(n),
      onNote: (level, msg, fields) => log[level](msg, fields),
    }));
  const pools = new UpstreamPools(metrics, (spare) => metrics.upstreamConnections.inc({ spare: spare ? 'true' : 'false' }));
  // Forward-proxy destinations are compared by address: names are resolved (bounded, cached).
  const routeEnv: RouteEnv = {
    resolver: new Resolver({
      metrics: { lookup: (result) => metrics.dnsLookups.inc({ result }), cacheSize: (n) => metrics.dnsCacheEntries.set(n) },
    }),
    own: ownAddresses(),
    selfPort: () => (server.address() as { port: number } | null)?.port ?? o.port,
    log,
  };
  const health = new UpstreamHealth(metrics, o.probeIntervalMs);
  const credentials = o.credentials ?? createCredentialStore({ log });
  let current: Snapshot | null = null;
  let generation = 0;
  /**
   * The snapshot replaced last: requests that took it before the swap may still evaluate Cedar, so
   * its policies are released one swap later (as the two alternating slots did before).
   */
  let retired: Snapshot | null = null;
  const retire = (s: Snapshot | null): void => {
    retired?.gates.cedar?.dispose();
    retired = s;
  };
  let lastError: { at: string; origin: string; errors: string[] } | null = null;
  // What the agent is told while there is no config: never the config's own errors, which name
  // files and lines of the platform's setup (those are in the logs and on /ready).
  let noConfigReason = 'no configuration has been loaded yet';
  let draining = false;
  let inflight = 0;
  /** Requests started since the process began (the idle collection waits for windows without any). */
  let started = 0;
  let idle: IdleReclaim | null = null;
  const streams = new Set<http.ServerResponse>();
  /** Requests in flight per client connection (pipelining). */
  const pipelined = new WeakMap<Socket, number>();
  const budget = new ByteBudget(DEFAULT_MAX_BUFFERED_BYTES, metrics);
  /**
   * Set once the listeners are bound: a snapshot's Cedar warm-up runs only then, and a moment later
   * (WARM_DELAY_MS), so the readiness probe that follows a start is answered first.
   */
  let listening = false;
  const warmSoon = (s: Snapshot): void => {
    setTimeout(() => {
      if (current === s) warmCedar(s);
    }, WARM_DELAY_MS).unref();
  };
  /** Applies a snapshot's listener limits (set once the server exists; apply runs only after). */
  let tuneServer: ((s: Snapshot) => void) | null = null;
  // Custody of OAuth clients (auth mode clientCredentials): tokens kept across reloads while a source's settings stay.
  // The client secret is read from the credential store when a token is requested (a rotation applies to the next token).
  const tokens = createSourceTokens({ secret: (ref) => credentials.get(ref), clock: systemClock, log });
  const upstream = createUpstreamClient(pools, tokens);
  // The A2A task owner table outlives reloads (each applies its a2a.tasks bounds); with --state-dir, restarts too.
  const taskOwners = new TaskOwners({ metrics: taskOwnerMetrics(metrics.registry), ...(o.taskStore ? { record: o.taskStore.write } : {}) });
  const approvals: ApprovalRuntime | null = o.approvals
    ? createApprovalRuntime({ backend: o.approvals, upstream, log, registry: metrics.registry, identity: () => current?.gates.identity ?? null })
    : null;

  const apply = (u: ConfigUpdate): void => {
    if (u.ok === 'none') {
      if (current)
        log.warn('config withdrawn; governed calls are denied until one arrives', { origin: u.origin, reason: u.reason, previousHash: current.hash });
      else log.warn('no config for this pod; governed calls are denied until one arrives', { origin: u.origin, reason: u.reason });
      retire(current);
      current = null;
      lastError = { at: new Date().toISOString(), origin: u.origin, errors: [u.reason] };
      // The provider's reason names ConfigMaps, namespaces and labels: for the logs and /ready only.
      noConfigReason = 'no configuration applies to this workload; details are in the sidecar logs and on its /ready endpoint';
      refreshHosts();
      metrics.configInfo.reset();
      return;
    }
    if (u.ok && current && current.hash === u.hash && sameIdentity(current.gates.identity, u.identity)) return;
    let errors = u.ok ? null : u.errors;
    let next: Snapshot | null = null;
    if (u.ok) {
      // The new snapshot's Cedar policies are its own: a failed compile leaves the live ones alone.
      const r = compileSnapshot(u.doc, u.identity, {
        hash: u.hash,
        generation: generation + 1,
        ...(u.policy !== undefined ? { policy: u.policy } : {}),
        ...(u.cedar ? { cedar: u.cedar } : {}),
        ...(o.approvals?.channels ? { approvalChannels: o.approvals.channels } : {}),
        credentials,
      });
      if (r.ok) {
        next = r.snapshot;
      } else {
        errors = r.errors;
      }
    }
    if (!next) {
      metrics.configReloads.inc({ result: 'error' });
      lastError = { at: new Date().toISOString(), origin: u.origin, errors: errors ?? [] };
      if (!current) noConfigReason = 'the configuration is invalid; details are in the sidecar logs and on its /ready endpoint';
      log.error('config rejected; the last good config keeps serving', { origin: u.origin, errors, servingHash: current?.hash ?? null });
      return;
    }
    generation = next.generation;
    if (u.ok) warnChannelDrift(u.doc as { approvalChannels?: { name: string }[] });
    const previous = current;
    retire(previous);
    current = next;
    lastError = null;
    // Re-read every credential the new config names (and watch only those from now on).
    credentials.retain(next.credentialRefs);
    pools.retain(next);
    tokens.retain(next.sources.values());
    budget.capacity = next.maxBufferedBytes;
    taskOwners.configure(next.a2aTasks);
    tuneServer?.(next);
    refreshHosts();
    metrics.configReloads.inc({ result: 'success' });
    metrics.configInfo.reset();
    // policy: pods of one namespace selected by different GovernancePolicies load different configs by design.
    metrics.configInfo.set({ hash: next.hash, policy: next.policy ?? 'none' }, 1);
    metrics.configLastReload.set(Date.now() / 1000);
    void health.track(next);
    if (listening) warmSoon(next);
    // Compiling a config grows the heap for little CPU: the next quiet spell collects.
    idle?.owe();
    log.info(previous ? 'config reloaded' : 'config loaded', {
      origin: u.origin,
      hash: next.hash,
      generation: next.generation,
      sources: [...next.sources.keys()],
      rules: next.gates.rules.length,
      cedar: next.gates.cedar !== null,
      // json: built from the operator's parsed form, cedar-wasm not loaded for it.
      cedarBuiltFrom: next.gates.cedar?.from ?? null,
    });
  };

  // The standalone backend is built from the approvalChannels of the file at start; a reload that
  // changes them is validated, but channels only come and go with a restart.
  const warnChannelDrift = (doc: { approvalChannels?: { name: string }[] }): void => {
    const known = o.approvals?.channels;
    if (!known || !doc.approvalChannels) return;
    const now = doc.approvalChannels.map((c) => c.name);
    if (now.length !== known.size || now.some((n) => !known.has(n))) {
      log.warn('approvalChannels changed; restart the sidecar to apply them (approvals keep using the channels it started with)', {
        running: [...known],
        configured: now,
      });
    }
  };

  const auditEvents = o.auditEvents ? startAuditEvents(o.auditEvents, { metrics, log }) : null;
  const ctxDeps = {
    pools,
    metrics,
    log,
    approvals: approvals && approvalInterceptor(approvals),
    budget,
    tokens,
    audit: createAuditRecorder(metrics, auditEvents),
    tracer,
  };

  // DNS rebinding: the Host names each listener answers to; rebuilt after listen and on each new
  // snapshot (server.allowedHosts), not per request.
  const ports = { proxy: 0, admin: 0 };
  let hosts = { proxy: hostPolicy(o.bind, 0, []), admin: hostPolicy(o.adminBind ?? o.bind, 0, []) };
  const refreshHosts = (): void => {
    const extra = [...(o.allowedHosts ?? []), ...(current?.allowedHosts ?? [])];
    hosts = { proxy: hostPolicy(o.bind, ports.proxy, extra), admin: hostPolicy(o.adminBind ?? o.bind, ports.admin, extra) };
  };
  const hostRefusal = (req: http.IncomingMessage, listener: 'proxy' | 'admin'): string | null => {
    let count = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') count++;
    const why = count > 1 ? 'the request has more than one Host header' : checkHost(hosts[listener], req.headers.host);
    if (why !== null) metrics.httpRefused.inc({ listener, check: 'host' });
    return why;
  };

  /** A connection closed by a listener's limits, counted where that listener's refusals are. */
  const rejected = (listener: HttpListener, reason: 'pipelining' | 'max_connections'): void => {
    if (listener === 'proxy') metrics.connectionsRejected.inc({ reason });
    else metrics.captureRefused.inc({ listener, reason });
  };
  const captureRefused = (listener: CaptureListener) => (reason: CaptureRefusal) => metrics.captureRefused.inc({ listener, reason });

  /** Admits a request (every HTTP listener): the pipelining cap, and the in-flight count the drain waits for. */
  const admit =
    (listener: HttpListener) =>
    (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
      // HTTP/1.1 pipelining: Node dispatches every request it has parsed at once, so one connection
      // could carry any number of concurrent calls past server.maxConnections. Over the cap the
      // connection is closed (responses are ordered, so no error can overtake the pending ones).
      const socket = req.socket;
      const onSocket = (pipelined.get(socket) ?? 0) + 1;
      if (onSocket > MAX_REQUESTS_PER_CONNECTION || socket.destroyed) {
        // Requests parsed from the same read still arrive after the close: counted once.
        if (!socket.destroyed) rejected(listener, 'pipelining');
        socket.destroy();
        return false;
      }
      pipelined.set(socket, onSocket);
      inflight++;
      started++;
      // One listener: a relayed answer's pipeline adds its own, and Node warns past ten per response.
      res.once('close', () => {
        pipelined.set(socket, (pipelined.get(socket) ?? 1) - 1);
        inflight--;
        streams.delete(res);
      });
      return true;
    };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (!admit('proxy')(req, res)) return;
    const url = req.url ?? '/';
    if (url.startsWith('/')) {
      const a = url.startsWith('/a2a/') ? A2A_PATH.exec(url) : null;
      const m = a ?? MCP_PATH.exec(url);
      let name = '-';
      try {
        name = m ? decodeURIComponent(m[1]!) : '-';
      } catch {
        /* stays '-' */
      }
      const ctx = createRequestContext(ctxDeps, req, res, name);
      // Origin-form requests are addressed to the sidecar itself: their Host must be one of its
      // names. (Absolute-form requests carry their destination in the URL; routeAbsolute decides.)
      const badHost = hostRefusal(req, 'proxy');
      if (badHost !== null) {
        res.setHeader('connection', 'close');
        replyError(ctx, res, 'HOST_NOT_ALLOWED', badHost);
        return;
      }
      if (a) run(ctx, res, () => routeA2a(ctx, req, res, name, a[2]!));
      else run(ctx, res, () => routeMcp(ctx, req, res, m ? name : null));
      return;
    }
    // Absolute-form: forward-proxy mode.
    const ctx = createRequestContext(ctxDeps, req, res, '-');
    run(ctx, res, () => routeHttp(ctx, req, res, parseAbsolute(req.url ?? '', req.method), 'proxy').then(() => undefined));
  };

  const run = (ctx: RequestContext, res: http.ServerResponse, fn: () => Promise<void>): void => {
    fn().catch((err: unknown) => {
      log.error('request failed unexpectedly', { correlationId: ctx.correlationId, error: (err as Error)?.message });
      if (!res.headersSent)
        replyError(ctx, res, 'INTERNAL_ERROR', 'ThoughtGate failed while handling the request; nothing was forwarded (correlation id in the sidecar logs)');
      else res.destroy();
    });
  };

  const routeMcp = async (ctx: RequestContext, req: http.IncomingMessage, res: http.ServerResponse, name: string | null): Promise<void> => {
    if (draining) {
      res.setHeader('connection', 'close');
      return replyError(ctx, res, 'SHUTTING_DOWN', 'the sidecar is shutting down; retry shortly');
    }
    if (name === null) return replyError(ctx, res, 'UNKNOWN_SOURCE', 'ThoughtGate serves MCP sources at /mcp/<source>');
    const snap = current;
    if (!snap) return denyAll(ctx, req, res, 'NOT_CONFIGURED', noConfigReason);
    const source = snap.sources.get(name);
    // The names of the other sources are the operator's business, not the agent's (an A2A agent is not an MCP source).
    if (source?.protocol !== 'mcp') return replyError(ctx, res, 'UNKNOWN_SOURCE', 'no source by that name; ThoughtGate serves MCP sources at /mcp/<source>');
    return governed(ctx, req, res, snap, source);
  };

  /** A2A hooks: task isolation and push egress (sidecar/a2a/isolation.ts), and gate 4 (sidecar/approvals/a2a.ts). */
  const isolation = a2aIsolationHooks({
    tasks: taskOwners,
    resolver: routeEnv.resolver,
    own: routeEnv.own,
    pushRefused: pushUrlRefusals(metrics.registry),
  });
  const a2a: A2aEnv = {
    // An approved call's answer goes through the isolation hooks too: its task is the client's.
    hooks: { ...isolation, ...(approvals ? { approve: a2aApprovalHook(approvals, answerRelayThrough<A2aGovernedCall>(isolation)) } : {}) },
    skills: new CardSkills(),
  };

  /** `/a2a/<source><sub>`: the same drain, not-configured and unknown-source answers as MCP's, in A2A's shape. */
  const routeA2a = async (ctx: RequestContext, req: http.IncomingMessage, res: http.ServerResponse, name: string, sub: string): Promise<void> => {
    if (draining) {
      res.setHeader('connection', 'close');
      return refuseA2a(ctx, res, UNREAD, 'SHUTTING_DOWN', 'the sidecar is shutting down; retry shortly');
    }
    const snap = current;
    if (!snap) return refuseA2a(ctx, res, UNREAD, 'NOT_CONFIGURED', noConfigReason);
    const source = snap.sources.get(name);
    if (source?.protocol !== 'a2a') {
      // `…/a2a/billing` without the trailing slash makes the JS client fetch /a2a/.well-known/agent-card.json.
      const hint = name === '.well-known' ? " (an A2A client's base URL is $THOUGHTGATE_URL/a2a/<source>/, with the trailing slash)" : '';
      return refuseA2a(ctx, res, UNREAD, 'UNKNOWN_SOURCE', `no agent by that name; ThoughtGate serves A2A agents at /a2a/<source>/${hint}`);
    }
    if (req.method === 'GET') streams.add(res);
    return handleA2a(ctx, req, res, snap, source, sub, a2a);
  };

  /** A source's MCP endpoint, whichever listener and form reached it; its GET streams end at drain. */
  const governed = (
    ctx: RequestContext,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    snap: Snapshot,
    source: CompiledSource,
    listener: HttpListener = 'proxy',
  ): Promise<void> => {
    if (req.method === 'GET') streams.add(res);
    return handleMcp(ctx, req, res, snap, source, listener);
  };

  /**
   * An http:// destination, from an absolute-form URL (proxy port) or from Host (transparent
   * listener): a source's MCP path and an A2A agent's endpoints are governed, allowed egress
   * relayed, the rest refused (returned).
   */
  const routeHttp = async (
    ctx: RequestContext,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: Target | Refusal,
    listener: HttpListener,
  ): Promise<Refusal | null> => {
    const snap = current;
    if (!snap || draining) {
      const reason = snap ? 'shutting down' : 'no configuration loaded';
      refuse(res, 503, reason);
      ctx.finish({ status: 503, decision: 'deny', gate: 'config' });
      return { kind: 'refused', status: 503, reason };
    }
    const r = target.kind === 'refused' ? target : await route(snap, target, routeEnv);
    if (r.kind === 'source') {
      await governed(ctx, req, res, snap, r.source, listener);
      return null;
    }
    if (r.kind === 'a2a') {
      // The agent's own origin, captured or proxied: governed as /a2a/<source><sub>, its card pointing back at that origin.
      if (req.method === 'GET') streams.add(res);
      await handleA2a(ctx, req, res, snap, r.source, r.sub, a2a, r.base, listener);
      return null;
    }
    if (r.kind === 'refused' || r.kind === 'tunnel') {
      const refusal: Refusal = r.kind === 'refused' ? r : { kind: 'refused', status: 400, reason: 'not a tunnel' }; // tunnels are CONNECT's
      refuse(res, refusal.status, refusal.reason);
      ctx.finish({ status: refusal.status, decision: 'deny', gate: 'egress', reason: refusal.reason });
      return refusal;
    }
    const status = await forwardEgress(pools, req, res, r);
    ctx.finish({ status, decision: 'forward', gate: 'egress', reason: r.oauth ? `OAuth passthrough of source ${r.oauth}` : `egress to ${r.url.host}` });
    return null;
  };

  /** Where a tunnel to host:port goes (CONNECT on the proxy port, SNI on the TLS listener). */
  const decideTunnel = async (target: Target | Refusal): Promise<Route> => {
    const snap = current;
    if (!snap || draining) return { kind: 'refused', status: 503, reason: 'not ready' };
    return target.kind === 'refused' ? target : route(snap, target, routeEnv);
  };

  // requestTimeout stays 0: request bodies have their own deadline (server.requestBodyTimeout, in
  // readBody) with a JSON-RPC answer. Headers are checked every second, so server.headersTimeout
  // holds to within a second.
  /** Every HTTP listener (the proxy port, the transparent listener's two), with the same limits. */
  const httpServers: http.Server[] = [];
  /** The TLS passthrough listener's servers and open tunnels. */
  const tlsServers: net.Server[] = [];
  const tunnels = new Set<Socket>();
  tuneServer = (s) => {
    for (const server of httpServers) {
      server.headersTimeout = s.server.headersTimeoutMs;
      server.keepAliveTimeout = s.server.keepAliveTimeoutMs;
      // Beyond the cap a connection is closed at accept, before any of it is read: answering it
      // would cost what the cap protects.
      server.maxConnections = s.server.maxConnections;
    }
    for (const server of tlsServers) server.maxConnections = s.server.maxConnections;
  };
  /** Open connections per listener, for the gauges. */
  const open: Record<HttpListener | 'tls', number> = { proxy: 0, transparent: 0, tls: 0 };
  const refusedAtCap = (listener: HttpListener | 'tls'): void =>
    listener === 'tls' ? metrics.captureRefused.inc({ listener, reason: 'max_connections' }) : rejected(listener, 'max_connections');
  const countConnections = (server: net.Server, listener: HttpListener | 'tls'): void => {
    server.on('connection', (socket: Socket) => {
      // A capture listener is two servers (127.0.0.1 and ::1): each one's own maxConnections alone
      // would let twice the cap through, so the listener's count decides.
      if (current && open[listener] >= current.server.maxConnections) {
        socket.destroy();
        refusedAtCap(listener);
        return;
      }
      open[listener]++;
      if (listener === 'proxy') metrics.connections.set(open.proxy);
      else {
        metrics.captureConnections.inc({ listener });
        metrics.captureOpenConnections.set({ listener }, open[listener]);
      }
      socket.once('close', () => {
        open[listener]--;
        if (listener === 'proxy') metrics.connections.set(open.proxy);
        else metrics.captureOpenConnections.set({ listener }, open[listener]);
      });
    });
    server.on('drop', () => refusedAtCap(listener));
  };
  const httpListener = (listener: HttpListener, onRequest: http.RequestListener): http.Server => {
    const server = http.createServer(
      // CorrelatedResponse: the correlation id goes out in writeHead's own headers (proxy/context.ts).
      { keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 0, connectionsCheckingInterval: 1000, ServerResponse: CorrelatedResponse },
      onRequest,
    ) as http.Server;
    httpServers.push(server);
    if (current) tuneServer?.(current);
    countConnections(server, listener);
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => onClientError(listener, err, socket));
    return server;
  };
  const tlsListener = (): net.Server => {
    const server = net.createServer((socket) =>
      handleTlsConnection(socket, {
        decide: decideTunnel,
        helloTimeoutMs: () => current?.server.headersTimeoutMs ?? 30_000,
        port: o.capture?.tlsUpstreamPort ?? TLS_PORT,
        log,
        refused: captureRefused('tls'),
        tunnels,
      }),
    );
    tlsServers.push(server);
    if (current) tuneServer?.(current);
    countConnections(server, 'tls');
    return server;
  };

  const server = httpListener('proxy', onRequest);
  server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    // The socket is ours from here on; an error while the destination is being resolved must not throw.
    socket.on('error', () => socket.destroy());
    const authority = req.url ?? '';
    const logLine = (status: number, reason?: string) =>
      log.info('request', { http: 'CONNECT', target: authority, status, decision: status === 200 ? 'forward' : 'deny', gate: 'egress', reason });
    decideTunnel(parseConnect(authority)).then(
      (r) => {
        if (r.kind === 'tunnel') return openTunnel(socket, head, r.address, r.port, (status) => logLine(status));
        // Only egress and refusals remain: CONNECT has no absolute-form route.
        const refusal = r.kind === 'refused' ? r : { status: 403, reason: 'not a tunnel destination' };
        if (socket.writable)
          socket.end(
            `HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? 'Error'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nThoughtGate: ${refusal.reason}\n`,
          );
        logLine(refusal.status, refusal.reason);
      },
      (err: unknown) => {
        log.error('CONNECT failed unexpectedly', { target: authority, error: (err as Error)?.message });
        socket.destroy();
      },
    );
  });
  function onClientError(listener: HttpListener, err: NodeJS.ErrnoException, socket: Duplex): void {
    // The server allows half-open sockets: end() alone would leave a silent client's side open.
    const close = (text: string) => {
      if (socket.writable) socket.end(text, () => socket.destroy());
      else socket.destroy();
    };
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      metrics.requestTimeouts.inc({ phase: 'headers' });
      if (listener !== 'proxy') metrics.captureRefused.inc({ listener, reason: 'timeout' });
      return close(
        'HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nThoughtGate: request headers did not arrive within server.headersTimeout\n',
      );
    }
    if (listener !== 'proxy') metrics.captureRefused.inc({ listener, reason: 'bad_request' });
    close('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  }

  // The capture listeners (a captured pod only): the same limits, admission and routing as the proxy port.
  if (o.capture) {
    const t = transparentHandlers({
      admit: admit('transparent'),
      context: (req, res) => createRequestContext(ctxDeps, req, res, '-'),
      route: (ctx, req, res, target) => routeHttp(ctx, req, res, target, 'transparent'),
      run,
      refused: captureRefused('transparent'),
    });
    for (let i = 0; i < 2; i++) httpListener('transparent', t.request).on('connect', t.connect);
    if (o.capture.tlsPort !== undefined) for (let i = 0; i < 2; i++) tlsListener();
  }
  const captureFile = o.capture ? captureReadiness(o.capture.stateFile) : null;
  /** One rule for /ready and Sidecar.ready(): a config, not draining, upstreams up, capture installed, credentials usable, the approval store writable. */
  const readiness = () => {
    const capture = captureFile?.(capturePorts) ?? null;
    const creds = credentials.report();
    // A broken approval store refuses every approval: the pod should get no traffic it would fail.
    const store = o.approvals?.storeStatus?.() ?? null;
    const ready =
      current !== null && !draining && health.allUp() && (capture === null || capture.state !== null) && creds.every((c) => c.ok) && !store?.failure;
    return { ready, capture, creds, store };
  };
  /** The capture listeners' ports, once bound (before the admin port serves /ready). */
  let capturePorts: { transparentPort: number; tlsPort: number | null } | null = null;

  const admin = createAdminServer({
    registry: metrics.registry,
    hostRefusal: (req) => hostRefusal(req, 'admin'),
    readiness: () => {
      const snap = current;
      const upstreams = health.report();
      const { ready, capture, creds, store } = readiness();
      return {
        ready,
        draining,
        config: snap
          ? { loaded: true, hash: snap.hash, generation: snap.generation, loadedAt: snap.loadedAt.toISOString(), from: o.provider.description }
          : { loaded: false, from: o.provider.description },
        lastError,
        upstreams,
        capture,
        // Where each credential comes from and whether it is usable; never a value.
        credentials: creds,
        ...(store ? { approvalStore: { writable: store.failure === null, ...(store.failure ? { reason: store.failure } : {}) } } : {}),
      };
    },
  });

  await o.provider.start(apply);
  // After the first config: the journal is replayed within its a2a.tasks bounds, not the defaults (before any listener).
  await o.taskStore?.attach(taskOwners);
  if (approvals && current) await adoptApprovals(approvals, o.approvals!, () => current, upstream, log);
  await listen(server, o.port, o.bind);
  // The capture listeners before the admin port: /ready checks the state file against their ports.
  if (o.capture) {
    const [plain, secure] = [httpServers.filter((s) => s !== server), tlsServers];
    const transparentPort = await listenLoopback(plain, o.capture.transparentPort, log, 'transparent');
    const tlsPort = secure.length > 0 ? await listenLoopback(secure, o.capture.tlsPort ?? 0, log, 'tls') : null;
    capturePorts = { transparentPort, tlsPort };
    log.info('capture listeners', { transparent: transparentPort, tls: tlsPort, stateFile: o.capture.stateFile });
  }
  await listen(admin, o.adminPort, o.adminBind ?? o.bind);
  const port = (server.address() as { port: number }).port;
  const adminPort = (admin.address() as { port: number }).port;
  ports.proxy = port;
  ports.admin = adminPort;
  refreshHosts();
  listening = true;
  if (current) warmSoon(current);
  // Once quiet after start (and after later work), the heap the work grew is handed back.
  if (o.idleReclaim) idle = reclaimWhenIdle({ requests: () => started });
  log.info('sidecar listening', { proxy: `http://${o.bind}:${port}`, admin: `http://${o.adminBind ?? o.bind}:${adminPort}`, config: o.provider.description });

  let closing: Promise<void> | null = null;
  return {
    port,
    adminPort,
    capture: capturePorts,
    metrics,
    snapshot: () => current,
    ready: () => readiness().ready,
    close() {
      closing ??= (async () => {
        draining = true;
        idle?.stop();
        const deadline = Date.now() + (o.drainTimeoutMs ?? 10_000);
        log.info('draining', { inflight, deadlineMs: o.drainTimeoutMs ?? 10_000 });
        for (const s of httpServers) {
          s.close();
          s.closeIdleConnections();
        }
        for (const s of tlsServers) s.close();
        // GET streams carry no pending request and clients resume them elsewhere: end them now.
        for (const s of streams) s.destroy();
        approvals?.engine.drain();
        while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        if (inflight > 0) log.warn('drain deadline reached; closing remaining connections', { inflight });
        for (const s of httpServers) s.closeAllConnections();
        for (const t of tunnels) t.destroy();
        health.close();
        credentials.close();
        await approvals?.close();
        await o.taskStore?.close();
        await auditEvents?.close();
        await o.provider.close();
        await new Promise<void>((r) => admin.close(() => r()));
        admin.closeAllConnections();
        await pools.close();
        // The last spans (the drain's) are exported, within a bound: a dead collector cannot hold up the pod's exit.
        await tracer.shutdown(TRACING_SHUTDOWN_MS);
        log.info('stopped');
      })();
      return closing;
    },
  };
}

/**
 * Approvals this sidecar submitted before it restarted (cluster mode; the standalone backend keeps
 * none). Adopted tasks run on approval in their MCP session, without the client's Authorization
 * header, which was only ever in memory: sources that need it fail the call (docs/approvals.md).
 */
async function adoptApprovals(
  rt: ApprovalRuntime,
  backend: ApprovalBackend,
  snapshot: () => Snapshot | null,
  upstream: UpstreamClient,
  log: Logger,
): Promise<void> {
  let adopted: Awaited<ReturnType<ApprovalBackend['adopt']>>;
  try {
    adopted = await backend.adopt();
  } catch (err) {
    log.warn('could not adopt approvals from before a restart', { backend: backend.description, error: describeError(err) });
    return;
  }
  if (adopted.length === 0) return;
  const snap = snapshot();
  if (!snap) return;
  await rt.engine.adopt(
    adopted,
    (p) => {
      const source = snapshot()?.sources.get(p.source);
      const owner = adoptedOwner(p);
      if (!source || !owner) return null;
      const headers: Record<string, string> = p.mcpSessionId !== undefined ? { 'mcp-session-id': p.mcpSessionId } : {};
      return {
        owner,
        execute: bufferedExecutor(upstream, {
          source,
          headers,
          upstreamTask: false,
          maxBytes: snap.maxFilteredResponseBytes,
          resultRoom: () => rt.engine.resultRoom(owner),
          correlationId: `adopted-${p.id}`,
        }),
      };
    },
    snap.approvals,
  );
  log.info('approvals adopted after a restart', { count: adopted.length, backend: backend.description });
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The listeners that answer HTTP: the proxy port and the transparent listener. */
type HttpListener = 'proxy' | Extract<CaptureListener, 'transparent'>;

/**
 * Binds a capture listener's two servers on 127.0.0.1 and ::1 (where REDIRECT delivers), at one
 * port. ::1 is skipped, with a log line, on a host without IPv6 loopback (nothing is redirected there).
 */
async function listenLoopback(servers: net.Server[], port: number, log: Logger, what: string): Promise<number> {
  const [v4, v6] = servers as [net.Server, net.Server];
  for (let attempt = 0; ; attempt++) {
    await listen(v4, port, '127.0.0.1');
    const bound = (v4.address() as { port: number }).port;
    try {
      await listen(v6, bound, '::1');
      return bound;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
        log.info('no IPv6 loopback on this host; the capture listener binds 127.0.0.1 only', { listener: what, port: bound });
        return bound;
      }
      // A free port chosen for 127.0.0.1 may be taken on ::1: choose again (only when any port will do).
      if (code !== 'EADDRINUSE' || port !== 0 || attempt >= 10) throw err;
      await new Promise<void>((r) => v4.close(() => r()));
    }
  }
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
