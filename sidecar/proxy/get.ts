// GET (the server-to-client stream, resumption) and DELETE (end of session): no message to
// decide, so they go upstream as they are; a GET stream's events are filtered by visibility and a
// legacy HTTP+SSE `endpoint` event ends it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { visibilityEnforced } from '../../policy/gates/enforcement.js';
import type { CompiledSource, Snapshot } from '../snapshot.js';
import { createSseRewriter, formatSseEvent } from '../sse.js';
import { EDIT_CHARGE } from './budget.js';
import type { RequestContext } from './context.js';
import { filterByShape } from './edits.js';
import { dataless, relay, streamTo, toClient } from './forward.js';
import { mediaType } from './headers.js';
import { errorFor } from './plan.js';
import { replyError } from './reply.js';
import { describeUpstreamError } from './upstream.js';

export async function handleGet(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, snap: Snapshot, source: CompiledSource): Promise<void> {
  // In audit, gate 1 hides nothing: replayed lists pass unfiltered (and, having no request, uncounted).
  const filtering =
    visibilityEnforced(snap.gates) && (source.visibility.tool !== null || source.visibility.resource !== null || source.visibility.prompt !== null);
  const up = await ctx.sendUpstream(source, req, 'GET', undefined, filtering);
  if (!up.ok) return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name), 502);
  const { statusCode, headers, body } = up.response;
  const isSse = mediaType(headers['content-type']) === 'text/event-stream';
  if (!isSse || statusCode !== 200) return relay(ctx, res, source, statusCode, headers, body);

  // The head goes out at once (an idle stream is a normal stream). The 2024-11-05 HTTP+SSE
  // transport announces a POST endpoint that would bypass the gates in an `endpoint` event: no
  // Streamable HTTP server sends one, so on any GET stream it is replaced by -32013 and the
  // stream ends. The rewriter holds each event until it is complete, so none of it leaks.
  let legacy = false;
  const rewriter = createSseRewriter({
    maxEventBytes: snap.maxFilteredResponseBytes,
    hold: ctx.budget.hold('sse_event', EDIT_CHARGE),
    rewrite: (ev) => {
      if (legacy) return '';
      if (ev.event === 'endpoint') {
        legacy = true;
        // After this chunk is pushed: stop reading the upstream and end the agent's stream.
        setImmediate(() => {
          body.unpipe(rewriter);
          body.destroy();
          rewriter.end();
        });
        ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol });
        const err = errorFor(
          ctx,
          null,
          'UNSUPPORTED_TRANSPORT',
          `upstream "${source.name}" speaks the 2024-11-05 HTTP+SSE transport, which ThoughtGate does not govern; use a Streamable HTTP endpoint`,
        );
        return formatSseEvent({ event: 'message', data: err });
      }
      if (ev.data === null || ev.data === '' || !filtering) return null;
      const out = filterByShape(ev.data, source.visibility, ctx.correlationId);
      // Data that is not JSON-RPC could be read another way by a client: it is not passed on.
      if (out === null) return dataless(ev);
      if (out === ev.data) return null;
      return formatSseEvent({ data: out, event: ev.event ?? undefined, id: ev.id ?? undefined });
    },
    onOversize: () => ctx.metrics.upstreamErrors.inc({ source: source.name, kind: 'invalid_response', protocol: source.protocol }),
  });
  res.writeHead(statusCode, toClient(res, headers, true));
  res.flushHeaders();
  ctx.markResponseStart();
  await streamTo(ctx, source, body, res, rewriter);
}

export async function forwardAsIs(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, source: CompiledSource, method: 'DELETE'): Promise<void> {
  const up = await ctx.sendUpstream(source, req, method, undefined, false);
  if (!up.ok) return replyError(ctx, res, 'UPSTREAM_UNAVAILABLE', describeUpstreamError(up.kind, source.name), 502);
  return relay(ctx, res, source, up.response.statusCode, up.response.headers, up.response.body);
}
