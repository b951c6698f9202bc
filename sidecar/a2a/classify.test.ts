import { describe, expect, test } from '@jest/globals';
import { cardPath, classifyA2a, MAX_QUERY_PARAMS, versionParam, type A2aLayout, queryRefusal } from './classify.js';

const L: A2aLayout = { basePath: '/', jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest' };

describe('classifyA2a', () => {
  test('the card, the JSON-RPC path and REST routes; the query kept for the agent', () => {
    expect(classifyA2a('/.well-known/agent-card.json', L)).toEqual({ kind: 'card', upstreamPath: '/.well-known/agent-card.json', query: '' });
    expect(classifyA2a('/a2a/jsonrpc?A2A-Version=1.0', L)).toEqual({
      kind: 'jsonrpc',
      upstreamPath: '/a2a/jsonrpc?A2A-Version=1.0',
      query: '?A2A-Version=1.0',
    });
    expect(classifyA2a('/a2a/rest/tasks/t1?historyLength=2', L)).toEqual({
      kind: 'rest',
      upstreamPath: '/a2a/rest/tasks/t1?historyLength=2',
      query: '?historyLength=2',
      route: '/tasks/t1',
    });
    expect(classifyA2a('/a2a/rest/v1/card', L)).toMatchObject({ kind: 'rest', route: '/v1/card' });
  });

  test('the card lives below the source URL path', () => {
    expect(cardPath('/agents/billing/')).toBe('/agents/billing/.well-known/agent-card.json');
    expect(classifyA2a('/.well-known/agent-card.json', { ...L, basePath: '/agents/billing' })).toMatchObject({
      upstreamPath: '/agents/billing/.well-known/agent-card.json',
    });
  });

  test('%-encoded unreserved characters are read plainly and sent upstream in that spelling', () => {
    expect(classifyA2a('/a2a/%6Asonrpc', L)).toMatchObject({ kind: 'jsonrpc', upstreamPath: '/a2a/jsonrpc' });
  });

  test.each([
    '/a2a/rest/message%3Asend',
    '/a2a/rest/tasks/a%2Fb',
    '/a2a/rest//message:send',
    '/a2a/rest/x/../message:send',
    '/a2a/rest/x/%2e%2e/message:send',
    '/a2a/rest/./message:send',
    '/a2a\\rest/message:send',
    '/a2a/jsonrpc/',
    '/A2A/jsonrpc',
    '/a2a/rest',
    '/a2a/rest/',
    '/.well-known/agent.json',
    '/',
    '',
    'a2a/jsonrpc',
    '/a2a/jsonrpc#x',
    '/a2a/rest/tasks/t1:cancel?tenant=prod#',
    '/a2a/rest/tasks/t1?x#&tenant=prod',
    '/a2a/jsonrpc?A2A-Version=1.0#',
  ])('%s is refused', (sub) => {
    expect(classifyA2a(sub, L).kind).toBe('refused');
  });

  test('an agent with only one interface serves only it', () => {
    expect(classifyA2a('/a2a/rest/message:send', { basePath: '/', jsonrpc: '/a2a/jsonrpc' }).kind).toBe('refused');
    expect(classifyA2a('/a2a/jsonrpc', { basePath: '/', rest: '/a2a/rest' }).kind).toBe('refused');
  });
});

test('versionParam: absent, one, or every value when repeated (a2aVersionOf refuses that)', () => {
  expect(versionParam('')).toBeUndefined();
  expect(versionParam('?x=1')).toBeUndefined();
  expect(versionParam('?A2A-Version=1.0')).toBe('1.0');
  expect(versionParam('?A2A-Version=1.0&A2A-Version=0.3')).toEqual(['1.0', '0.3']);
});

test('queryRefusal: per call, an allowlist of names, each once, no ";"', () => {
  expect(queryRefusal('', 'rest', 'ListTasks')).toBeNull();
  expect(queryRefusal('?pageSize=5&status=TASK_STATE_WORKING&A2A-Version=1.0&tenant=t', 'rest', 'ListTasks')).toBeNull();
  expect(queryRefusal('?historyLength=3', 'rest', 'GetTask')).toBeNull();
  expect(queryRefusal('?A2A-Version=1.0', 'jsonrpc', 'SendMessage')).toBeNull();
  expect(queryRefusal('?tenant=t', 'jsonrpc', 'SendMessage')).toMatch(/not one SendMessage takes/);
  expect(queryRefusal('?historyLength=3', 'rest', 'SendMessage')).toMatch(/not one SendMessage takes/);
  expect(queryRefusal('?tenant[]=x', 'rest', 'SendMessage')).toMatch(/"tenant\[\]"/);
  expect(queryRefusal('?tenant%5Bk%5D=x', 'rest', 'SendMessage')).toMatch(/"tenant\[k\]"/);
  expect(queryRefusal('?pageSize=1&pageSize=2', 'rest', 'ListTasks')).toMatch(/more than once/);
  expect(queryRefusal('?pageSize=1;tenant=x', 'rest', 'ListTasks')).toMatch(/";"/);
  expect(queryRefusal('?x=1', 'card', 'GetAgentCard')).toMatch(/not one GetAgentCard takes/);
});

test('queryRefusal: no empty parameter, at most MAX_QUERY_PARAMS (express stops counting at 1000, empty ones included)', () => {
  expect(queryRefusal(`?${'&'.repeat(1000)}tenant=sandbox`, 'rest', 'SendMessage')).toMatch(/more than 32 parameters/);
  for (const q of ['?&tenant=t', '?tenant=t&', '?A2A-Version=1.0&&tenant=t', '?&']) expect(queryRefusal(q, 'rest', 'SendMessage')).toMatch(/empty parameter/);
  expect(queryRefusal('?&', 'card', 'GetAgentCard')).toMatch(/empty parameter/);
  const many = Array.from({ length: MAX_QUERY_PARAMS + 1 }, () => 'A2A-Version=1.0').join('&');
  expect(queryRefusal(`?${many}`, 'jsonrpc', 'SendMessage')).toMatch(/more than 32 parameters/);
  expect(queryRefusal('?tenant=', 'rest', 'SendMessage')).toBeNull();
});
