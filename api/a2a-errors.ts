// The body of an A2A error answer, per binding and version (issue 13, DESIGN §2.9). Pure: the data
// path (sidecar/a2a/) writes what these return. Shapes are the A2A SDK servers' own
// (/work/a2a/captures/*-12-get-unknown-task.txt), so a client reads ThoughtGate's answers as it
// reads the agent's:
// - JSON-RPC: a JSON-RPC error; ThoughtGate's own with its A2A code and `data` {gate, rule,
//   reason, correlationId} (a2aGateError in errors.ts, both versions); A2A's own with, in 1.0,
//   `data` = [ErrorInfo] (0.3: no data).
// - HTTP+JSON 1.0: `{"error": {code: <http>, status, message, details: [ErrorInfo]}}`,
//   Content-Type application/a2a+json; ThoughtGate's ErrorInfo has domain thoughtgate.io and its
//   data as metadata (strings: ErrorInfo metadata is a string map).
// - HTTP+JSON 0.3: `{code, message}` with the same HTTP status, Content-Type application/json.
import {
  A2A_ERROR_DOMAIN,
  A2A_ERRORS,
  type A2aErrorName,
  a2aCode,
  a2aGateError,
  ERROR_INFO_TYPE,
  ERRORS,
  type ErrorName,
  THOUGHTGATE_ERROR_DOMAIN,
} from './errors.js';
import { rpcError, type JsonRpcError } from '../lib/jsonrpc-reply.js';

export type A2aVersionName = '1.0' | '0.3';

/** An HTTP+JSON error answer: status, Content-Type and the JSON body. */
export interface A2aRestError {
  http: number;
  contentType: string;
  body: unknown;
}

type RpcStatus =
  | 'INVALID_ARGUMENT'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INTERNAL'
  | 'FAILED_PRECONDITION';

/** HTTP status and google.rpc status of each ThoughtGate error on the HTTP+JSON binding. */
export const A2A_REST_STATUS: Record<ErrorName, { http: number; status: RpcStatus }> = {
  UPSTREAM_UNAVAILABLE: { http: 502, status: 'UNAVAILABLE' },
  DENIED_BY_RULE: { http: 403, status: 'PERMISSION_DENIED' },
  DENIED_BY_POLICY: { http: 403, status: 'PERMISSION_DENIED' },
  POLICY_ERROR: { http: 403, status: 'PERMISSION_DENIED' },
  APPROVAL_UNAVAILABLE: { http: 503, status: 'UNAVAILABLE' },
  APPROVAL_REJECTED: { http: 403, status: 'PERMISSION_DENIED' },
  APPROVAL_TIMEOUT: { http: 504, status: 'DEADLINE_EXCEEDED' },
  APPROVAL_CANCELLED: { http: 499, status: 'CANCELLED' },
  APPROVAL_LIMIT: { http: 429, status: 'RESOURCE_EXHAUSTED' },
  NOT_CONFIGURED: { http: 503, status: 'UNAVAILABLE' },
  REQUEST_TOO_LARGE: { http: 413, status: 'INVALID_ARGUMENT' },
  UNSUPPORTED_TRANSPORT: { http: 502, status: 'INTERNAL' },
  ORIGIN_NOT_ALLOWED: { http: 403, status: 'PERMISSION_DENIED' },
  UPSTREAM_RESPONSE_INVALID: { http: 502, status: 'INTERNAL' },
  SHUTTING_DOWN: { http: 503, status: 'UNAVAILABLE' },
  UNKNOWN_SOURCE: { http: 404, status: 'NOT_FOUND' },
  QUERY_NOT_ALLOWED: { http: 400, status: 'INVALID_ARGUMENT' },
  BATCH_TOO_LARGE: { http: 400, status: 'INVALID_ARGUMENT' },
  OVERLOADED: { http: 503, status: 'UNAVAILABLE' },
  HOST_NOT_ALLOWED: { http: 403, status: 'PERMISSION_DENIED' },
  PARSE_ERROR: { http: 400, status: 'INVALID_ARGUMENT' },
  INVALID_REQUEST: { http: 400, status: 'INVALID_ARGUMENT' },
  HEADER_MISMATCH: { http: 400, status: 'INVALID_ARGUMENT' },
  TASK_RESULT_TOO_LARGE: { http: 502, status: 'INTERNAL' },
  CREDENTIAL_UNAVAILABLE: { http: 503, status: 'UNAVAILABLE' },
  RATE_LIMITED: { http: 429, status: 'RESOURCE_EXHAUSTED' },
  INTERNAL_ERROR: { http: 500, status: 'INTERNAL' },
  PUSH_URL_NOT_ALLOWED: { http: 403, status: 'PERMISSION_DENIED' },
};

export const A2A_CONTENT_TYPE = { '1.0': 'application/a2a+json', '0.3': 'application/json' } as const;

type GateErrorData = Parameters<typeof a2aGateError>[1];

/** ThoughtGate's refusal on the HTTP+JSON binding of `version`. */
export function tgRestError(version: A2aVersionName, name: ErrorName, d: GateErrorData): A2aRestError {
  const { http, status } = A2A_REST_STATUS[name];
  const e = a2aGateError(name, d);
  if (version === '0.3') return { http, contentType: A2A_CONTENT_TYPE['0.3'], body: { code: a2aCode(name), message: ERRORS[name].message } };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.data as Record<string, unknown>)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return {
    http,
    contentType: A2A_CONTENT_TYPE['1.0'],
    body: {
      error: {
        code: http,
        status,
        message: ERRORS[name].message,
        details: [{ '@type': ERROR_INFO_TYPE, reason: name, domain: THOUGHTGATE_ERROR_DOMAIN, metadata }],
      },
    },
  };
}

/** `message`: as the agent would word it (e.g. `Task not found: <id>`); default the SDK's. */
const wording = (name: A2aErrorName, message?: string) => message ?? A2A_ERRORS[name].message;
const errorInfo = (name: A2aErrorName) => ({ '@type': ERROR_INFO_TYPE, reason: A2A_ERRORS[name].reason, domain: A2A_ERROR_DOMAIN });

/** One of A2A's own errors as JSON-RPC, as the SDK servers of `version` send it. */
export function a2aJsonRpcError(version: A2aVersionName, name: A2aErrorName, message?: string): JsonRpcError {
  const { code } = A2A_ERRORS[name];
  return version === '1.0' ? rpcError(code, wording(name, message), [errorInfo(name)]) : { code, message: wording(name, message) };
}

/** One of A2A's own errors on the HTTP+JSON binding, as the SDK servers of `version` send it. */
export function a2aRestError(version: A2aVersionName, name: A2aErrorName, message?: string): A2aRestError {
  const spec = A2A_ERRORS[name];
  if (version === '0.3') return { http: spec.http, contentType: A2A_CONTENT_TYPE['0.3'], body: { code: spec.code, message: wording(name, message) } };
  return {
    http: spec.http,
    contentType: A2A_CONTENT_TYPE['1.0'],
    body: { error: { code: spec.http, status: spec.status, message: wording(name, message), details: [errorInfo(name)] } },
  };
}
