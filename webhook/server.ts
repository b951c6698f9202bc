// The HTTPS shell around mutatePod: POST /mutate-pods (admission.k8s.io/v1 AdmissionReview),
// GET /healthz. Run by the operator process.
//
// Failure semantics. The apiserver applies the webhook's failurePolicy when the call fails (no
// answer, timeout, non-200, unreadable body); that policy is the administrator's choice, so the
// webhook never makes it for them:
// - a review we cannot read -> 400 (a call failure: failurePolicy decides);
// - our own error (mutatePod throws, the namespace lookup fails) -> 500, likewise. Answering
//   allowed:true would silently admit ungoverned pods even under Fail; allowed:false would block
//   pods even under Ignore. With Ignore, the apiserver counts it
//   (apiserver_admission_webhook_fail_open_count) and annotates the audit event.
// - a pod we choose not to inject -> allowed:true without a patch.
// - the policies selecting a pod are not known yet (the cache is filling) -> 500: injecting without
//   their Secrets and ports would start a pod that cannot authenticate or is not fully captured.
// - the namespace's labels are not known (cache not synced, or the namespace labelled a moment
//   ago) -> 500 likewise: its capture label decides whether the pod is captured.
// The webhook denies a pod (allowed:false, 403, with a message naming what to change) in one case
// only: capture is on for it (annotation, namespace label or chart default) and cannot hold — an
// invalid capture annotation, a container or pod setting that could walk around the rules
// (webhook/capture.ts bypassFindings; chart capture.allowBypassablePods admits those instead), a
// pod that cannot be injected (hostNetwork, a name clash); or its namespace is labelled
// thoughtgate.io/capture=required and it opted out of capture or injection.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { INJECT_ENABLED, LABELS } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { mutatePod, type InjectionSettings, type Pod } from './mutate.js';
import { describeError } from '../lib/describe-error.js';
import { BodyError, readBodyText } from '../lib/read-body.js';

export const MUTATE_PATH = '/mutate-pods';
/**
 * The apiserver caps request bodies at 3 MiB; an AdmissionReview of an UPDATE carries the object
 * twice. Anything bigger is not from an apiserver.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
}

export type AdmissionOutcome = 'injected' | 'skipped' | 'denied' | 'invalid' | 'error';

export interface AdmissionResult {
  outcome: AdmissionOutcome;
  reason: string;
  operation?: string;
  namespace?: string;
}

export interface WebhookServerOptions {
  port: number;
  host?: string;
  /** Read at start, on reloadTls(), and every tlsCheckIntervalMs; a changed cert/key is served to new connections. */
  getTls: () => TlsMaterial | undefined;
  settings: InjectionSettings;
  /**
   * The namespace's labels (e.g. from the operator's namespace informer). undefined = not known
   * (yet): a pod CREATE fails (500, failurePolicy decides), since its capture label cannot be
   * guessed. Not given at all: the webhook configuration's namespaceSelector matched, so
   * inject=enabled and no capture label (tests, a webhook without the operator).
   */
  namespaceLabels?: (name: string) => Record<string, string> | undefined | Promise<Record<string, string> | undefined>;
  /**
   * The namespace's GovernancePolicies, raw (the operator's informer cache): Secrets to mount and
   * ports to capture. undefined = not known yet: the review fails (500, failurePolicy decides).
   * Not given at all: no policies (tests, a webhook without the operator).
   */
  policies?: (namespace: string) => readonly unknown[] | undefined | Promise<readonly unknown[] | undefined>;
  log?: Logger;
  /** Metrics hook: called once per request to MUTATE_PATH with the handler's time in seconds. */
  onAdmission?: (result: AdmissionResult, seconds: number) => void;
  maxBodyBytes?: number;
  /** Default 10 s; 0 disables polling (reloadTls() only). */
  tlsCheckIntervalMs?: number;
}

export interface WebhookServer {
  port: number;
  server: https.Server;
  /** Re-reads getTls(); true when a new certificate is now served. */
  reloadTls(): boolean;
  close(): Promise<void>;
}

export class BadReview extends Error {}

interface ReviewRequest {
  uid: string;
  operation: string;
  namespace: string;
  kind?: { group?: string; kind?: string };
  subResource?: string;
  object?: unknown;
}

/** Validates the parts of an AdmissionReview we rely on; throws BadReview with what is wrong. */
export function parseReview(body: unknown): ReviewRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadReview('body is not a JSON object');
  const r = body as Record<string, unknown>;
  if (r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview') {
    throw new BadReview(`expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got ${String(r.apiVersion)}, ${String(r.kind)}`);
  }
  const req = r.request as Record<string, unknown> | undefined;
  if (typeof req !== 'object' || req === null) throw new BadReview('request is missing');
  if (typeof req.uid !== 'string' || !req.uid) throw new BadReview('request.uid is missing');
  if (typeof req.operation !== 'string') throw new BadReview('request.operation is missing');
  return {
    uid: req.uid,
    operation: req.operation,
    namespace: typeof req.namespace === 'string' ? req.namespace : '',
    kind: req.kind as ReviewRequest['kind'],
    subResource: typeof req.subResource === 'string' ? req.subResource : undefined,
    object: req.object,
  };
}

export interface ReviewAnswer {
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
    status?: { code: number; reason: string; message: string };
  };
  result: AdmissionResult;
}

/** The decision for one parsed review. Throws on our own errors (the caller answers 500). */
export async function answerReview(
  req: ReviewRequest,
  settings: InjectionSettings,
  namespaceLabels?: WebhookServerOptions['namespaceLabels'],
  policiesOf?: WebhookServerOptions['policies'],
): Promise<ReviewAnswer> {
  const base = { operation: req.operation, namespace: req.namespace };
  // A configuration that also matches other kinds or subresources must not break them.
  if ((req.kind?.group ?? '') !== '' || req.kind?.kind !== 'Pod' || req.subResource) {
    return {
      response: { uid: req.uid, allowed: true },
      result: { ...base, outcome: 'skipped', reason: `not a pod (${req.kind?.kind ?? '?'}${req.subResource ? `/${req.subResource}` : ''})` },
    };
  }
  if (req.operation === 'CREATE' && (typeof req.object !== 'object' || req.object === null)) throw new BadReview('request.object is missing');
  const known = namespaceLabels ? await namespaceLabels(req.namespace) : { [LABELS.inject]: INJECT_ENABLED };
  // The namespace's capture label (enabled, disabled, required) decides capture for every pod there:
  // guessing it would skip a namespace's capture silently, so a pod CREATE waits for the cache
  // (500: failurePolicy decides; the ReplicaSet controller retries).
  if (known === undefined && req.operation === 'CREATE')
    throw new Error(
      `namespace ${req.namespace}'s labels are not known yet (the namespace cache is not synced or has not seen it); cannot tell whether its pods are captured`,
    );
  const labels = known ?? { [LABELS.inject]: INJECT_ENABLED };
  let policies: readonly unknown[] | undefined;
  if (policiesOf && req.operation === 'CREATE') {
    policies = await policiesOf(req.namespace);
    if (policies === undefined) throw new Error('the GovernancePolicy cache is not synced yet; cannot tell which Secrets and ports the pod needs');
  }
  const m = mutatePod({ pod: (req.object ?? {}) as Pod, namespace: { name: req.namespace, labels }, operation: req.operation, settings, policies });
  if (m.denied !== undefined) {
    return {
      response: {
        uid: req.uid,
        allowed: false,
        status: { code: 403, reason: 'Forbidden', message: m.denied },
        ...(m.warnings.length ? { warnings: m.warnings } : {}),
      },
      result: { ...base, outcome: 'denied', reason: m.reason },
    };
  }
  const response: ReviewAnswer['response'] = { uid: req.uid, allowed: true };
  if (m.patch.length) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(m.patch)).toString('base64');
  }
  if (m.warnings.length) response.warnings = m.warnings;
  return { response, result: { ...base, outcome: m.injected ? 'injected' : 'skipped', reason: m.reason } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function secureOptions(t: TlsMaterial): SecureContextOptions {
  return { cert: t.cert, key: t.key, minVersion: 'TLSv1.2' };
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const max = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let served = o.getTls();
  if (!served) throw new Error('webhook server: no TLS certificate yet (run the certificate manager first)');

  const record = (result: AdmissionResult, start: bigint): void => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    try {
      o.onAdmission?.(result, seconds);
    } catch (err) {
      o.log?.warn('webhook: onAdmission callback failed', { error: describeError(err) });
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      send(res, 200, 'ok');
      return;
    }
    if (path !== MUTATE_PATH) {
      send(res, 404, { error: 'not found', paths: [MUTATE_PATH, '/healthz'] });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      send(res, 405, { error: 'use POST' });
      return;
    }
    const start = process.hrtime.bigint();
    let review: ReviewRequest;
    try {
      // onStop 'pause': the 413 below still reaches the API server; the rest is drained after it.
      const body = await readBodyText(req, { limitBytes: max, what: 'AdmissionReview', onStop: 'pause' }).catch((err: unknown) => {
        throw err instanceof BodyError && err.reason === 'invalid-utf8' ? new BadReview(err.message) : err;
      });
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch (err) {
        throw new BadReview(`body is not JSON: ${describeError(err)}`);
      }
      review = parseReview(json);
    } catch (err) {
      if (err instanceof BodyError && err.reason === 'too-large') {
        res.setHeader('connection', 'close');
        send(res, 413, `AdmissionReview larger than ${max} bytes`);
        req.resume();
        record({ outcome: 'invalid', reason: 'body too large' }, start);
      } else if (err instanceof BadReview) {
        send(res, 400, `malformed AdmissionReview: ${err.message}`);
        record({ outcome: 'invalid', reason: err.message }, start);
      } else {
        o.log?.warn('webhook: reading the request failed', { error: describeError(err) });
        if (!res.headersSent) send(res, 400, 'could not read the request');
        record({ outcome: 'invalid', reason: describeError(err) }, start);
      }
      return;
    }
    try {
      const a = await answerReview(review, o.settings, o.namespaceLabels, o.policies);
      send(res, 200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: a.response });
      record(a.result, start);
      if (a.result.outcome === 'injected') o.log?.info('webhook: injected', { namespace: review.namespace, uid: review.uid, reason: a.result.reason });
      else if (a.result.outcome === 'denied')
        o.log?.info('webhook: denied', { namespace: review.namespace, uid: review.uid, reason: a.result.reason, message: a.response.status?.message });
      else o.log?.debug('webhook: not injected', { namespace: review.namespace, uid: review.uid, reason: a.result.reason });
    } catch (err) {
      const bad = err instanceof BadReview;
      const message = describeError(err);
      if (bad) send(res, 400, `malformed AdmissionReview: ${message}`);
      else {
        o.log?.error('webhook: internal error; the apiserver applies failurePolicy', {
          namespace: review.namespace,
          uid: review.uid,
          error: (err as Error).stack ?? message,
        });
        send(res, 500, `thoughtgate webhook internal error: ${message}`);
      }
      record({ outcome: bad ? 'invalid' : 'error', reason: message, operation: review.operation, namespace: review.namespace }, start);
    }
  };

  const server = https.createServer({ ...secureOptions(served) }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.log?.error('webhook: unhandled error', { error: describeError(err) });
      if (!res.headersSent) send(res, 500, 'internal error');
      else res.destroy();
    });
  });
  // Longer than the apiserver's idle timeout for webhook connections (Go's 90 s): the client, not
  // we, closes idle keep-alive connections, so a POST never races a close and fails the admission.
  server.keepAliveTimeout = 120_000;
  server.requestTimeout = 30_000;
  server.on('tlsClientError', (err) => o.log?.debug('webhook: TLS handshake failed', { error: err.message }));

  const reloadTls = (): boolean => {
    const next = o.getTls();
    if (!next || (next.cert.toString() === served!.cert.toString() && next.key.toString() === served!.key.toString())) return false;
    // Applies to new connections; open ones finish on the old cert (the apiserver reconnects).
    server.setSecureContext(secureOptions(next));
    served = next;
    o.log?.info('webhook: serving a new TLS certificate');
    return true;
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const interval = o.tlsCheckIntervalMs ?? 10_000;
  const timer =
    interval > 0
      ? setInterval(() => {
          try {
            reloadTls();
          } catch (err) {
            o.log?.error('webhook: new TLS certificate rejected; keeping the old one', { error: describeError(err) });
          }
        }, interval)
      : undefined;
  timer?.unref();

  return {
    port: (server.address() as AddressInfo).port,
    server,
    reloadTls,
    close: () =>
      new Promise<void>((resolve) => {
        if (timer) clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
