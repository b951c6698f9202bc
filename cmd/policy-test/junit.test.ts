// JUnit XML: well-formed by a strict reader (test/support/strict-xml.ts), with the
// testsuites/testsuite/testcase/failure structure CI reads, and hostile names escaped.
import { parseXml } from '../../test/support/strict-xml.js';
import type { Explanation } from './explain.js';
import { junitXml, xmlText } from './junit.js';
import type { FileResult } from './run.js';

const HOSTILE = 'a <b> & "c" \'d\' ]]> \u0000\u0007 \uD800 \r\n end';

function explanation(): Explanation {
  return {
    config: 'config c.yaml (hash 1)',
    identity: { namespace: 'n', serviceAccount: 's', pod: 'p', labels: {} },
    source: 'up',
    method: 'tools/call',
    target: { kind: 'tool', decided: HOSTILE },
    gates: { rules: { rule: null, action: 'deny', plumbing: false } },
    outcome: { decision: 'deny', gate: 'rules', reason: 'denied by defaultAction', rule: 'defaultAction', error: { code: -32003, name: 'DENIED_BY_RULE' } },
  };
}

const results: FileResult[] = [
  {
    file: 'a & b.test.yaml',
    kind: 'ran',
    target: 'config c.yaml',
    warnings: [],
    durationMs: 12,
    cases: [
      { name: 'fine', at: 'a:1:1', passed: true, failures: [], explanation: explanation(), durationMs: 1 },
      { name: HOSTILE, at: 'a:9:5', passed: false, failures: [`expected forward, got deny (${HOSTILE})`], explanation: explanation(), durationMs: 2.5 },
    ],
  },
  { file: 'broken.test.yaml', kind: 'error', errors: ['broken.test.yaml:1:1: bad <thing>'], durationMs: 0 },
  { file: 'invalid.test.yaml', kind: 'invalid-target', errors: ['c.yaml:3:4: rules[0].action: nope'], durationMs: 1 },
];

test('the report is well-formed XML with the structure CI tools read', () => {
  const root = parseXml(junitXml(results));
  expect(root.name).toBe('testsuites');
  expect(root.attrs).toMatchObject({ name: 'thoughtgate test', tests: '4', failures: '2', errors: '1' });
  const [ran, broken, invalid] = root.children;
  expect(root.children.map((s) => s.name)).toEqual(['testsuite', 'testsuite', 'testsuite']);
  expect(ran!.attrs).toMatchObject({ name: 'a & b.test.yaml', tests: '2', failures: '1', errors: '0', time: '0.012' });
  expect(ran!.children.map((c) => [c.name, c.attrs['classname'], c.children.map((f) => f.name)])).toEqual([
    ['testcase', 'a & b.test.yaml', []],
    ['testcase', 'a & b.test.yaml', ['failure']],
  ]);
  const failing = ran!.children[1]!;
  // Escaped, never dropped: what XML cannot carry at all becomes U+FFFD; CR survives as a reference.
  const shown = 'a <b> & "c" \'d\' ]]> \uFFFD\uFFFD \uFFFD \r\n end';
  expect(failing.attrs['name']).toBe(shown);
  const failure = failing.children[0]!;
  expect(failure.attrs['type']).toBe('PolicyTestFailure');
  expect(failure.attrs['message']).toBe(`expected forward, got deny (${shown})`);
  expect(failure.text).toContain('a:9:5');
  expect(failure.text).toContain(`call               tools/call tool ${shown} on source up`);
  expect(failure.text).toContain('decision           deny -32003 DENIED_BY_RULE at gate rules');
  expect(broken!.attrs).toMatchObject({ tests: '1', failures: '0', errors: '1' });
  expect(broken!.children[0]!.children[0]).toMatchObject({ name: 'error', text: 'broken.test.yaml:1:1: bad <thing>' });
  expect(invalid!.attrs).toMatchObject({ tests: '1', failures: '1', errors: '0' });
  expect(invalid!.children[0]!.children[0]).toMatchObject({ name: 'failure', attrs: { type: 'invalid-target' } });
});

test('the strict reader refuses what a CI parser would', () => {
  const ok = '<?xml version="1.0" encoding="UTF-8"?>\n<a x="1"><b/></a>\n';
  expect(parseXml(ok).children[0]!.name).toBe('b');
  for (const bad of [
    ok.replace('<b/>', '<b>'),
    ok.replace('<b/>', 'x & y'),
    ok.replace('<b/>', '&nbsp;'),
    ok.replace('x="1"', 'x="1" x="2"'),
    ok.replace('x="1"', 'x=1'),
    ok.replace('<b/>', '\u0001'),
    ok.replace('<b/>', '</c>'),
    ok.replace('<b/>', ']]>'),
  ])
    expect(() => parseXml(bad)).toThrow();
  expect(xmlText('<&>"\'')).toBe('&lt;&amp;&gt;&quot;&apos;');
});
