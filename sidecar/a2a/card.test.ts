import { describe, expect, test } from '@jest/globals';
import { compileVisibility } from '../../policy/gates/visibility.js';
import { ownBase, rewriteCard, type CardRewrite } from './card.js';

const AGENT = 'http://agent.internal:8080';
const R: CardRewrite = {
  visibility: compileVisibility({ mode: 'blocklist', skills: ['admin*'] }),
  origin: AGENT,
  layout: { basePath: '/', jsonrpc: '/a2a/jsonrpc', rest: '/a2a/rest' },
  sidecarBase: 'http://127.0.0.1:7467/a2a/billing',
};
const skills = (ids: string[]) => ids.map((id) => ({ id, name: id }));

describe('rewriteCard', () => {
  test('1.0: skills filtered; governed interfaces rewritten; other origins, gRPC and other paths dropped; signatures removed', () => {
    const card = {
      name: 'billing',
      skills: skills(['invoice', 'admin-reset']),
      supportedInterfaces: [
        { url: `${AGENT}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: `${AGENT}/a2a/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
        { url: `${AGENT}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '0.3' },
        { url: `${AGENT}/grpc`, protocolBinding: 'GRPC', protocolVersion: '1.0' },
        { url: 'http://elsewhere:8080/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: `${AGENT}/other`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: `http://user:pw@agent.internal:8080/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: 'not a url', protocolBinding: 'JSONRPC' },
      ],
      signatures: [{ protected: 'x', signature: 'y' }],
    };
    const r = rewriteCard(card, R);
    expect(r).toEqual({
      ok: true,
      changed: true,
      card: {
        name: 'billing',
        skills: skills(['invoice']),
        supportedInterfaces: [
          { url: 'http://127.0.0.1:7467/a2a/billing/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
          { url: 'http://127.0.0.1:7467/a2a/billing/a2a/rest', protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
          { url: 'http://127.0.0.1:7467/a2a/billing/a2a/jsonrpc', protocolBinding: 'JSONRPC', protocolVersion: '0.3' },
        ],
      },
    });
  });

  test('0.3: url and additionalInterfaces rewritten; an ungoverned main url gives way to the first governed interface', () => {
    const card = {
      name: 'x',
      url: `${AGENT}/grpc`,
      preferredTransport: 'GRPC',
      additionalInterfaces: [
        { url: `${AGENT}/grpc`, transport: 'GRPC' },
        { url: `${AGENT}/a2a/rest`, transport: 'HTTP+JSON' },
      ],
      skills: skills(['a']),
    };
    const r = rewriteCard(card, R);
    expect(r.ok && r.card).toEqual({
      name: 'x',
      url: 'http://127.0.0.1:7467/a2a/billing/a2a/rest',
      preferredTransport: 'HTTP+JSON',
      additionalInterfaces: [{ url: 'http://127.0.0.1:7467/a2a/billing/a2a/rest', transport: 'HTTP+JSON' }],
      skills: skills(['a']),
    });
  });

  test('a skill without a string id is not shown; an allowlist shows only what it names', () => {
    const allow = { ...R, visibility: compileVisibility({ mode: 'allowlist', skills: ['echo'] }) };
    const r = rewriteCard({ skills: [{ id: 'echo' }, { id: 7 }, null, { name: 'no id' }, { id: 'count' }] }, allow);
    expect(r.ok && r.card['skills']).toEqual([{ id: 'echo' }]);
  });

  test('an unedited card keeps its signatures', () => {
    const r = rewriteCard({ name: 'x', skills: skills(['a']), signatures: ['s'] }, R);
    expect(r).toEqual({ ok: true, changed: false, card: { name: 'x', skills: skills(['a']), signatures: ['s'] } });
  });

  test.each([
    ['not an object', []],
    ['skills not a list', { skills: {} }],
    ['interfaces not a list', { supportedInterfaces: 'x' }],
    ['additionalInterfaces not a list', { additionalInterfaces: {} }],
    ['no governed interface at all (0.3)', { url: 'http://elsewhere/a2a/jsonrpc' }],
  ])('refused, never passed unfiltered: %s', (_what, card) => {
    expect(rewriteCard(card, R).ok).toBe(false);
  });
});

test('ownBase: the socket address the client reached, IPv4-mapped addresses plain, IPv6 in brackets', () => {
  expect(ownBase({ localAddress: '127.0.0.1', localPort: 7467 })).toBe('http://127.0.0.1:7467');
  expect(ownBase({ localAddress: '::ffff:10.0.0.5', localPort: 7467 })).toBe('http://10.0.0.5:7467');
  expect(ownBase({ localAddress: '::1', localPort: 7467 })).toBe('http://[::1]:7467');
  expect(ownBase({ localAddress: 'fe80::1%eth0', localPort: 1 })).toBe('http://[fe80::1%25eth0]:1');
});
