// Headers that describe the message follow the body actually forwarded.
import type { IncomingHttpHeaders } from 'node:http';
import { parseJsonRpc, type Message } from '../../lib/jsonrpc.js';
import { describingHeaders, encodeMcpHeader, mediaType, upstreamRequestHeaders } from './headers.js';

const msg = (text: string): Message => {
  const p = parseJsonRpc(text);
  if (!p.ok || p.batch) throw new Error('bad');
  return p.message;
};
const incoming: IncomingHttpHeaders = { 'mcp-method': 'tools/call', 'mcp-name': 'secret_tool', 'mcp-param-region': 'eu-secret', authorization: 'Bearer t' };

test('a rewritten body gets Mcp-Method/Mcp-Name from itself and no Mcp-Param-*', () => {
  const describe = describingHeaders(incoming, msg('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"thoughtgate-probe-ab","arguments":{}}}'));
  const out = upstreamRequestHeaders(incoming, { extra: {}, identityEncoding: false, describe });
  expect(out).toMatchObject({ 'mcp-method': 'tools/call', 'mcp-name': 'thoughtgate-probe-ab', authorization: 'Bearer t' });
  expect(JSON.stringify(out)).not.toMatch(/secret/);
});

test("a batch gets no describing headers; an unchanged body keeps the agent's", () => {
  const out = upstreamRequestHeaders(incoming, { extra: {}, identityEncoding: false, describe: describingHeaders(incoming, null) });
  expect(Object.keys(out).filter((k) => k.startsWith('mcp-'))).toEqual([]);
  expect(upstreamRequestHeaders(incoming, { extra: {}, identityEncoding: false })).toMatchObject({
    'mcp-name': 'secret_tool',
    'mcp-param-region': 'eu-secret',
  });
});

test('header values that are not plain visible ASCII are base64-encoded', () => {
  expect(encodeMcpHeader('file:///a b.txt')).toBe('file:///a b.txt');
  expect(encodeMcpHeader(' x')).toMatch(/^=\?base64\?/);
  expect(encodeMcpHeader('é')).toBe(`=?base64?${Buffer.from('é').toString('base64')}?=`);
});

test('mediaType: case and parameters do not matter', () => {
  expect(mediaType('Application/JSON; charset=utf-8')).toBe('application/json');
  expect(mediaType(' TEXT/EVENT-STREAM ')).toBe('text/event-stream');
  expect(mediaType(undefined)).toBe('');
  expect(mediaType('application/json-seq')).toBe('application/json-seq');
});
