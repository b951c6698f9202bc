// Answers the proxy gives itself, before or instead of the upstream's: one JSON-RPC error with no
// id (a request that could not be read), or a JSON body as is.
import type { ServerResponse } from 'node:http';
import { ERRORS, type ErrorName } from '../../api/errors.js';
import type { RequestContext } from './context.js';
import { errorFor } from './plan.js';

export { errorFor };

/** Answers with one JSON-RPC error and no id: for failures before any message could be read. */
export function replyError(ctx: RequestContext, res: ServerResponse, name: ErrorName, reason: string, status?: number): void {
  sendJson(res, status ?? ERRORS[name].http, errorFor(ctx, null, name, reason));
  ctx.finish({ status: res.statusCode, decision: 'deny', gate: ERRORS[name].gate, reason });
}

export function sendJson(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
