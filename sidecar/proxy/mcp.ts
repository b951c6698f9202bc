// The governed MCP endpoint of one source: POST (requests, notifications, responses, batches:
// post.ts), GET (server-to-client streams, resumption: get.ts) and DELETE (end of session). Every
// message of a POST passes gates 1–3 before anything is sent upstream; responses stream back as
// they arrive (forward.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LIMITS_DEFAULTS } from '../../api/config.js';
import { ERRORS, type ErrorName } from '../../api/errors.js';
import { batchBody, decodeUtf8Strict, parseJsonRpc } from '../../lib/jsonrpc.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { batchExceeds } from './batch-size.js';
import { readBody } from './body.js';
import type { RequestContext } from './context.js';
import { corsHeaders, preflightHeaders } from './cors.js';
import { forwardAsIs, handleGet } from './get.js';
import { headerValue } from './headers.js';
import { errorFor } from './plan.js';
import { DEFAULT_BODY_TIMEOUT_MS, handlePost } from './post.js';
import { upstreamTarget } from './query.js';
import { replyError, sendJson } from './reply.js';

export { replyError };

/**
 * Refuses everything in a request while keeping each request's id, so a client's pending call
 * fails at once with a clear error instead of waiting for a reply that never comes.
 */
export async function denyAll(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, name: ErrorName, reason: string): Promise<void> {
  if (req.method !== 'POST') return replyError(ctx, res, name, reason, 503);
  // No config: the defaults of limits and server bound what is read.
  const hold = ctx.budget.hold('request_body');
  const body = await readBody(req, LIMITS_DEFAULTS.maxBodyBytes, { timeoutMs: DEFAULT_BODY_TIMEOUT_MS, hold });
  const text = body.ok ? decodeUtf8Strict(body.body) : null;
  hold.release();
  const tooMany = text !== null && batchExceeds(text, LIMITS_DEFAULTS.maxBatchMessages);
  const parsed = text === null || tooMany ? null : parseJsonRpc(text);
  if (!parsed?.ok) {
    if (!body.ok) res.setHeader('connection', 'close');
    return replyError(ctx, res, name, reason, 503);
  }
  const messages = parsed.batch ? parsed.messages : [parsed.message];
  const replies = messages.flatMap((m) => (m.kind === 'request' ? [errorFor(ctx, m.id, name, reason)] : []));
  if (replies.length === 0) {
    res.writeHead(503).end();
    return ctx.finish({ status: 503, decision: 'deny', gate: ERRORS[name].gate, reason });
  }
  sendJson(res, 200, parsed.batch ? batchBody(replies) : replies[0]!);
  ctx.finish({ status: 200, decision: 'deny', gate: ERRORS[name].gate, reason });
}

export async function handleMcp(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  snap: Snapshot,
  source: CompiledSource,
  /** The listener the request came in on, for the refusal counters. */
  listener: 'proxy' | 'transparent' = 'proxy',
): Promise<void> {
  ctx.sourceLabel = source.name;
  const origin = headerValue(req.headers['origin']);
  if (origin !== undefined) {
    if (!snap.allowedOrigins.has(origin)) {
      ctx.metrics.httpRefused.inc({ listener, check: 'origin' });
      return replyError(ctx, res, 'ORIGIN_NOT_ALLOWED', `Origin "${origin}" is not in server.allowedOrigins`);
    }
    // An allowed browser client: CORS headers on every answer, and preflights answered here
    // (they carry no MCP message and are never forwarded).
    for (const [k, v] of Object.entries(corsHeaders(origin))) res.setHeader(k, v);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.writeHead(204, preflightHeaders(origin, headerValue(req.headers['access-control-request-headers']))).end();
      return ctx.finish({ status: 204, decision: 'forward', gate: 'transport', reason: 'CORS preflight' });
    }
  }
  const target = upstreamTarget(source.path, req.url);
  if (!target.ok) return replyError(ctx, res, 'QUERY_NOT_ALLOWED', target.reason);
  // Without its credential the upstream would refuse or, worse, serve anonymously: deny every call
  // now, naming the credential (never its value). Sending resolves the headers again, so a
  // rotation in between is the value sent.
  const headers = source.headers();
  if (!headers.ok) return denyAll(ctx, req, res, 'CREDENTIAL_UNAVAILABLE', `source "${source.name}": ${headers.reason}`);
  switch (req.method) {
    case 'POST':
      return handlePost(ctx, req, res, snap, source);
    case 'GET':
      return handleGet(ctx, req, res, snap, source);
    case 'DELETE':
      return forwardAsIs(ctx, req, res, source, 'DELETE');
    default:
      res.setHeader('allow', 'GET, POST, DELETE');
      return replyError(ctx, res, 'INVALID_REQUEST', `method ${req.method} is not part of the MCP Streamable HTTP transport`, 405);
  }
}
