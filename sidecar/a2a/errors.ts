// Writing A2A's error answers (the bodies are api/a2a-errors.ts's): ThoughtGate's refusals with
// their A2A codes, and A2A's own errors (method not found, invalid params, version) as the SDK
// servers word them, on the binding and version the request used.
import type { ServerResponse } from 'node:http';
import { a2aRestError, tgRestError, a2aJsonRpcError, type A2aRestError } from '../../api/a2a-errors.js';
import { a2aGateError, ERRORS, type A2aErrorName, type ErrorName } from '../../api/errors.js';
import type { A2aVersion } from '../../api/config.js';
import type { RawId } from '../../lib/jsonrpc.js';
import { errorText } from '../../lib/jsonrpc-reply.js';
import type { RequestContext } from '../proxy/context.js';

/** How a refusal is worded: the binding and version of the request (before they are known: JSON-RPC 0.3, no id). */
export interface A2aAnswerShape {
  binding: 'jsonrpc' | 'rest';
  version: A2aVersion;
  /** JSON-RPC: the request's id (null when it could not be read). */
  id: RawId | null;
  /** JSON-RPC answers to a request that was read go with HTTP 200, as the SDK servers send them. */
  read: boolean;
  /** A 0.3 JSON-RPC stream method (message/stream, tasks/resubscribe): errors as one SSE error event. */
  sse?: boolean;
}

export const UNREAD: A2aAnswerShape = { binding: 'jsonrpc', version: '0.3', id: null, read: false };

function writeJson(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A 0.3 stream method's error as the SDK agents send it: HTTP 200, one `event: error` SSE event (a 0.3.14 client reads nothing else on a stream). */
function writeSseError(res: ServerResponse, json: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = `event: error\ndata: ${json}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function writeRest(res: ServerResponse, e: A2aRestError): void {
  writeJson(res, e.http, e.contentType, JSON.stringify(e.body));
}

/** ThoughtGate's refusal (its A2A code, data {gate, rule, reason, correlationId}). Finishes the request. */
export function refuseA2a(ctx: RequestContext, res: ServerResponse, shape: A2aAnswerShape, name: ErrorName, reason: string, rule?: string): void {
  const d = { reason, correlationId: ctx.correlationId, ...(rule !== undefined ? { rule } : {}) };
  if (shape.binding === 'rest') writeRest(res, tgRestError(shape.version, name, d));
  else if (shape.sse && shape.read) writeSseError(res, errorText(shape.id, a2aGateError(name, d)));
  else writeJson(res, shape.read ? 200 : ERRORS[name].http, 'application/json', errorText(shape.id, a2aGateError(name, d)));
  ctx.finish({ status: res.statusCode, decision: 'deny', gate: ERRORS[name].gate, reason });
}

/** One of A2A's own errors, answered here (nothing was forwarded). Finishes the request. */
export function a2aError(
  ctx: RequestContext,
  res: ServerResponse,
  shape: A2aAnswerShape,
  name: A2aErrorName,
  reason: string,
  message?: string,
  sse = false,
): void {
  if (shape.binding === 'rest') writeRest(res, a2aRestError(shape.version, name, message));
  else if ((sse || shape.sse) && shape.read) writeSseError(res, errorText(shape.id, a2aJsonRpcError(shape.version, name, message)));
  else writeJson(res, shape.read ? 200 : 400, 'application/json', errorText(shape.id, a2aJsonRpcError(shape.version, name, message)));
  ctx.finish({ status: res.statusCode, decision: 'deny', gate: 'transport', reason });
}

/** A JSON-RPC request error (-32700 parse, -32600 invalid request) with id null or the request's, at HTTP 400. */
export function rpcRequestError(ctx: RequestContext, res: ServerResponse, code: -32700 | -32600, message: string, reason: string): void {
  writeJson(res, 400, 'application/json', errorText(null, { code, message, data: { gate: 'transport', reason, correlationId: ctx.correlationId } }));
  ctx.finish({ status: 400, decision: 'deny', gate: 'transport', reason });
}

/**
 * ThoughtGate's refusal as one SSE event on a JSON-RPC stream already under way (the head went):
 * a `data:` event with the JSON-RPC error and the call's id; on a 0.3 stream method an
 * `event: error` one, as the agents send theirs.
 */
export function sseErrorEvent(ctx: RequestContext, shape: A2aAnswerShape, name: ErrorName, reason: string): string {
  const json = errorText(shape.id, a2aGateError(name, { reason, correlationId: ctx.correlationId }));
  return `${shape.sse ? 'event: error\n' : ''}data: ${json}\n\n`;
}
