// JSON-RPC 2.0 messages that ThoughtGate writes itself: answers (result, error) and the requests
// and notifications it originates. An id goes out as the exact text the peer sent (`raw`, as
// lib/jsonrpc.ts parses it): re-serialising a parsed id would turn 1.0 into 1 and round integers
// past 2^53, and the peer would no longer recognise its answer.

/** The id's text as it appeared on the wire (lib/jsonrpc.ts's RawId satisfies it). */
export interface IdText {
  readonly raw: string;
}

/** The `error` member of an error response. */
export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** An error object, checked: JSON-RPC error codes are integers. */
export function rpcError(code: number, message: string, data?: unknown): JsonRpcError {
  if (!Number.isInteger(code)) throw new RangeError(`JSON-RPC error code must be an integer, got ${code}`);
  return data === undefined ? { code, message } : { code, message, data };
}

/** `{"jsonrpc":"2.0","id":<raw id or null>,"error":{"code":..,"message":..[,"data":..]}}` */
export function errorResponse(id: IdText | null, code: number, message: string, data?: unknown): string {
  if (!Number.isInteger(code)) throw new RangeError(`JSON-RPC error code must be an integer, got ${code}`);
  const d = data === undefined ? undefined : JSON.stringify(data);
  return (
    '{"jsonrpc":"2.0","id":' +
    (id === null ? 'null' : id.raw) +
    ',"error":{"code":' +
    code +
    ',"message":' +
    JSON.stringify(message) +
    (d === undefined ? '}}' : `,"data":${d}}}`)
  );
}

/** errorResponse for an error object. */
export function errorText(id: IdText | null, e: JsonRpcError): string {
  return errorResponse(id, e.code, e.message, e.data);
}

/** `{"jsonrpc":"2.0","id":<raw id>,"result":..}` */
export function resultResponse(id: IdText, result: unknown): string {
  const r = JSON.stringify(result);
  if (r === undefined) throw new TypeError('result is not JSON-serialisable');
  return `{"jsonrpc":"2.0","id":${id.raw},"result":${r}}`;
}

/** `{"jsonrpc":"2.0","id":<raw id>,"method":..[,"params":..]}`: a request ThoughtGate sends. */
export function requestText(id: IdText, method: string, params?: unknown): string {
  return `{"jsonrpc":"2.0","id":${id.raw},"method":${JSON.stringify(method)}${paramsText(params)}}`;
}

/** `{"jsonrpc":"2.0","method":..[,"params":..]}` */
export function notificationText(method: string, params?: unknown): string {
  return `{"jsonrpc":"2.0","method":${JSON.stringify(method)}${paramsText(params)}}`;
}

function paramsText(params: unknown): string {
  if (params === undefined) return '';
  const p = JSON.stringify(params);
  // JSON-RPC params are structured: an object or an array.
  if (p === undefined || params === null || typeof params !== 'object') throw new TypeError('JSON-RPC params must be an object or an array');
  return `,"params":${p}`;
}
