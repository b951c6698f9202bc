// The JSON-RPC errors ThoughtGate itself answers with. docs/errors.md is this table in prose, and a
// test keeps the two in step. ThoughtGate's own codes sit in -32000..-32019, which MCP leaves to
// implementations; -32001 and -32002 are skipped because the MCP SDK (request timeout) and the MCP
// spec (resource not found) already give them meanings a client may act on. The standard JSON-RPC
// codes and MCP's own -32020 (HeaderMismatch, 2026-07-28) are used where they mean exactly that.

import { rpcError, type JsonRpcError } from '../lib/jsonrpc-reply.js';

export type Gate = 'transport' | 'visibility' | 'rules' | 'cedar' | 'approval' | 'ratelimit' | 'upstream' | 'config' | 'egress';

export interface ErrorSpec {
  code: number;
  /** HTTP status of the reply that carries the error (200 when it answers a JSON-RPC request normally). */
  http: number;
  gate: Gate;
  message: string;
}

export const ERRORS = {
  UPSTREAM_UNAVAILABLE: { code: -32000, http: 200, gate: 'upstream', message: 'Upstream MCP server unavailable' },
  DENIED_BY_RULE: { code: -32003, http: 200, gate: 'rules', message: 'Denied by ThoughtGate rule' },
  DENIED_BY_POLICY: { code: -32004, http: 200, gate: 'cedar', message: 'Denied by ThoughtGate policy' },
  POLICY_ERROR: { code: -32005, http: 200, gate: 'cedar', message: 'ThoughtGate policy evaluation failed; denied' },
  APPROVAL_UNAVAILABLE: { code: -32006, http: 200, gate: 'approval', message: 'Approval required but not available' },
  APPROVAL_REJECTED: { code: -32007, http: 200, gate: 'approval', message: 'Approval rejected' },
  APPROVAL_TIMEOUT: { code: -32008, http: 200, gate: 'approval', message: 'Approval timed out' },
  APPROVAL_CANCELLED: { code: -32009, http: 200, gate: 'approval', message: 'Approval cancelled' },
  APPROVAL_LIMIT: { code: -32010, http: 200, gate: 'approval', message: 'Too many pending approvals' },
  NOT_CONFIGURED: { code: -32011, http: 200, gate: 'config', message: 'ThoughtGate has no valid configuration; denied' },
  REQUEST_TOO_LARGE: { code: -32012, http: 413, gate: 'transport', message: 'Request body too large' },
  UNSUPPORTED_TRANSPORT: { code: -32013, http: 200, gate: 'transport', message: 'Unsupported MCP transport' },
  ORIGIN_NOT_ALLOWED: { code: -32014, http: 403, gate: 'transport', message: 'Origin not allowed' },
  UPSTREAM_RESPONSE_INVALID: { code: -32015, http: 502, gate: 'upstream', message: 'Upstream response could not be governed' },
  SHUTTING_DOWN: { code: -32016, http: 503, gate: 'transport', message: 'ThoughtGate is shutting down' },
  UNKNOWN_SOURCE: { code: -32017, http: 404, gate: 'transport', message: 'Unknown MCP source' },
  QUERY_NOT_ALLOWED: { code: -32019, http: 400, gate: 'transport', message: 'Query parameter not allowed' },
  BATCH_TOO_LARGE: { code: -32021, http: 400, gate: 'transport', message: 'Batch too large' },
  OVERLOADED: { code: -32022, http: 503, gate: 'transport', message: 'ThoughtGate is overloaded' },
  HOST_NOT_ALLOWED: { code: -32023, http: 403, gate: 'transport', message: 'Host not allowed' },
  // Standard JSON-RPC and MCP codes we answer with when the request itself is broken.
  PARSE_ERROR: { code: -32700, http: 400, gate: 'transport', message: 'Parse error' },
  INVALID_REQUEST: { code: -32600, http: 400, gate: 'transport', message: 'Invalid Request' },
  HEADER_MISMATCH: { code: -32020, http: 400, gate: 'transport', message: 'Header does not match the request body' },
  /** A task ThoughtGate ran itself answered more than it keeps (approvals.maxTaskResultBytes, maxRetainedTaskBytes). */
  TASK_RESULT_TOO_LARGE: { code: -32024, http: 200, gate: 'approval', message: 'Task result too large to keep' },
  /** The source's credential (a Secret key, file or variable its headers name) is missing or invalid: nothing was sent. */
  CREDENTIAL_UNAVAILABLE: { code: -32025, http: 200, gate: 'upstream', message: 'Upstream credential unavailable' },
  /** A `rateLimits` bucket of this sidecar is empty: nothing was forwarded; `data.retryAfterMs` says when to retry. */
  RATE_LIMITED: { code: -32026, http: 200, gate: 'ratelimit', message: 'Rate limit exceeded' },
  /** A bug in ThoughtGate while handling the request: nothing was forwarded. */
  INTERNAL_ERROR: { code: -32603, http: 500, gate: 'transport', message: 'Internal error' },
  /** A2A only: a webhook URL a client gave for push notifications is not allowed by `egress` (or is a local address). */
  PUSH_URL_NOT_ALLOWED: { code: -32018, http: 200, gate: 'egress', message: 'Push notification URL not allowed' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

/** What `error.data` carries: enough for a person to find the decision in the logs, nothing internal. */
export interface ErrorData {
  gate: Gate;
  rule?: string;
  reason: string;
  correlationId: string;
  [key: string]: unknown;
}

/**
 * The JSON-RPC error object for `name`: its code and message, and `data` with its gate (or the
 * one given), rule, reason, extra fields and the correlation id, in that order.
 */
export function gateError(name: ErrorName, d: { reason: string; correlationId: string; rule?: string; gate?: Gate } & Record<string, unknown>): JsonRpcError {
  const e: ErrorSpec = ERRORS[name];
  const { reason, correlationId, rule, gate, ...extra } = d;
  const data: ErrorData = { gate: gate ?? e.gate, ...(rule !== undefined ? { rule } : {}), reason, ...extra, correlationId };
  return rpcError(e.code, e.message, data);
}

// ---------- A2A (issue 13) ----------
// A2A reserves -32001…-32009 for its own meanings, and the SDK clients act on them (JS 0.3.14 even
// replaces the message): ThoughtGate's MCP codes -32003…-32010 would be misread there. So on A2A
// ThoughtGate's own refusals use its codes moved down by 50, into -32050…-32076: still JSON-RPC's
// server-error range, outside A2A's table, and every SDK client keeps code, message and data
// (/work/a2a/captures/client-error-mapping-tg-block.txt). The standard JSON-RPC codes (-32700,
// -32600, -32601, -32602, -32603) mean the same in A2A and are kept.

/** ThoughtGate's A2A code = its MCP code + A2A_CODE_SHIFT, for codes in -32000…-32026. */
export const A2A_CODE_SHIFT = -50;

/** The code an A2A client gets for a ThoughtGate error. */
export function a2aCode(name: ErrorName): number {
  const code: number = ERRORS[name].code;
  return code <= -32000 && code >= -32026 ? code + A2A_CODE_SHIFT : code;
}

/** The same error as gateError(), with its A2A code: for A2A JSON-RPC answers. */
export function a2aGateError(name: ErrorName, d: Parameters<typeof gateError>[1]): JsonRpcError {
  return { ...gateError(name, d), code: a2aCode(name) };
}

export interface A2aErrorSpec {
  code: number;
  /** HTTP status on the HTTP+JSON binding (the SDK's, A2A spec §5.4). */
  http: number;
  /** google.rpc status name of the 1.0 HTTP+JSON body. */
  status: 'NOT_FOUND' | 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT' | 'INTERNAL';
  /** google.rpc.ErrorInfo reason (1.0 JSON-RPC `data`, 1.0 HTTP+JSON `details`). */
  reason: string;
  /** The SDK's default message. */
  message: string;
}

/** `domain` of A2A's own ErrorInfo details; ThoughtGate's are THOUGHTGATE_ERROR_DOMAIN. */
export const A2A_ERROR_DOMAIN = 'a2a-protocol.org';
export const THOUGHTGATE_ERROR_DOMAIN = 'thoughtgate.io';
export const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';

/**
 * A2A's own errors, which ThoughtGate answers where they mean exactly that (a foreign task is
 * TASK_NOT_FOUND, an unknown version VERSION_NOT_SUPPORTED), as the SDK servers word them.
 */
export const A2A_ERRORS = {
  TASK_NOT_FOUND: { code: -32001, http: 404, status: 'NOT_FOUND', reason: 'TASK_NOT_FOUND', message: 'Task not found' },
  TASK_NOT_CANCELABLE: { code: -32002, http: 400, status: 'FAILED_PRECONDITION', reason: 'TASK_NOT_CANCELABLE', message: 'Task cannot be canceled' },
  PUSH_NOTIFICATION_NOT_SUPPORTED: {
    code: -32003,
    http: 400,
    status: 'FAILED_PRECONDITION',
    reason: 'PUSH_NOTIFICATION_NOT_SUPPORTED',
    message: 'Push Notification is not supported',
  },
  UNSUPPORTED_OPERATION: {
    code: -32004,
    http: 400,
    status: 'FAILED_PRECONDITION',
    reason: 'UNSUPPORTED_OPERATION',
    message: 'This operation is not supported',
  },
  CONTENT_TYPE_NOT_SUPPORTED: {
    code: -32005,
    http: 400,
    status: 'INVALID_ARGUMENT',
    reason: 'CONTENT_TYPE_NOT_SUPPORTED',
    message: 'Incompatible content types',
  },
  INVALID_AGENT_RESPONSE: { code: -32006, http: 500, status: 'INTERNAL', reason: 'INVALID_AGENT_RESPONSE', message: 'Invalid agent response type' },
  EXTENDED_AGENT_CARD_NOT_CONFIGURED: {
    code: -32007,
    http: 400,
    status: 'FAILED_PRECONDITION',
    reason: 'EXTENDED_AGENT_CARD_NOT_CONFIGURED',
    message: 'Extended Agent Card not configured',
  },
  EXTENSION_SUPPORT_REQUIRED: {
    code: -32008,
    http: 400,
    status: 'FAILED_PRECONDITION',
    reason: 'EXTENSION_SUPPORT_REQUIRED',
    message: 'Extension support required',
  },
  VERSION_NOT_SUPPORTED: { code: -32009, http: 400, status: 'FAILED_PRECONDITION', reason: 'VERSION_NOT_SUPPORTED', message: 'Version not supported' },
  // Standard JSON-RPC codes A2A uses as they are.
  METHOD_NOT_FOUND: { code: -32601, http: 404, status: 'NOT_FOUND', reason: 'METHOD_NOT_FOUND', message: 'Method not found' },
  INVALID_PARAMS: { code: -32602, http: 400, status: 'INVALID_ARGUMENT', reason: 'INVALID_PARAMS', message: 'Invalid params' },
} as const satisfies Record<string, A2aErrorSpec>;
export type A2aErrorName = keyof typeof A2A_ERRORS;
