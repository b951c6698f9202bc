import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../api/canonical.js';
import { configHash, loadConfigFile, parseConfigText } from './load.js';
import type { ParseResult } from './load.js';

const F = 'thoughtgate.yaml';

function errorsOf(r: ParseResult): string[] {
  if (r.ok) throw new Error(`expected errors, got a valid config ${JSON.stringify(r.config)}`);
  return r.errors;
}
function configOf(r: ParseResult) {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.join('\n')}`);
  return r;
}

describe('parseConfigText: valid documents', () => {
  test('fills defaults and substitutes variables', () => {
    const r = configOf(
      parseConfigText(
        [
          'sources:',
          '  - name: github',
          '    url: https://${HOST}/mcp',
          '    headers: { Authorization: "Bearer ${TOKEN}" }',
          'defaultAction: forward',
          '',
        ].join('\n'),
        F,
        { HOST: 'mcp.example.com', TOKEN: 't0k' },
      ),
    );
    expect(r.config.sources[0]).toEqual({
      name: 'github',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: 'Bearer t0k' },
      expose: { mode: 'all' },
      timeouts: { connect: '5s', response: '60s' },
    });
    expect(r.config.defaultAction).toBe('forward');
    expect(r.config.rules).toEqual([]);
    expect(r.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  test('a variable holding YAML stays one string value', () => {
    const evil = 'x\n- evil: true\ndefaultAction: forward';
    const r = configOf(parseConfigText('rules:\n  - action: deny\n    reason: "${X}"\n', F, { X: evil }));
    expect(r.config.rules).toEqual([{ action: 'deny', match: {}, reason: evil }]);
    expect(r.config.defaultAction).toBe('deny');
  });

  test('anchors and aliases work', () => {
    const r = configOf(parseConfigText('rules:\n  - match: &m { tool: "delete_*" }\n    action: deny\n  - match: *m\n    action: forward\n', F, {}));
    expect(r.config.rules[1]!.match).toEqual({ tool: 'delete_*' });
  });
});

describe('parseConfigText: errors point at the spot in the file', () => {
  test('unknown key, with the allowed keys', () => {
    const text = [
      'sources:', //                          1
      '  - name: github', //                  2
      '    url: https://mcp.example.com/mcp', // 3
      '    expose:', //                       4
      '      mode: allowlist', //             5
      '      tool: ["search_*"]', //          6
    ].join('\n');
    expect(errorsOf(parseConfigText(text, F, {}))).toEqual([
      'thoughtgate.yaml:6:7: sources[0].expose: unknown key "tool" (allowed: mode, tools, resources, prompts, skills)',
    ]);
  });

  test('bad durations, a missing required key, and an "approve" rule without approval', () => {
    const text = [
      'sources:', //                                         1
      '  - name: github', //                                 2
      '    url: https://mcp.example.com/mcp', //             3
      '    timeouts: { connect: 5s, response: 10 minutes }', // 4
      'rules:', //                                           5
      '  - match: { tool: "create_*" }', //                  6
      '    action: approve', //                              7
      '  - match: { tool: "x" }', //                         8
      '    action: aprove', //                               9
    ].join('\n');
    expect(errorsOf(parseConfigText(text, F, {}))).toEqual([
      'thoughtgate.yaml:4:40: sources[0].timeouts.response: invalid duration "10 minutes" at "10 minutes": use a number with a unit (ms, s, m, h, d), e.g. "30s" or "1h30m"',
      // Points at the rule: the key it asks for is not there.
      'thoughtgate.yaml:6:5: rules[0].approval: a rule with action "approve" needs approval.channel',
      'thoughtgate.yaml:9:13: rules[1].action: expected one of forward, deny, approve, policy',
    ]);
    expect(errorsOf(parseConfigText('rules:\n  - match: { tool: x }\n', F, {}))).toEqual([
      'thoughtgate.yaml:2:5: rules[0].action: required (expected one of forward, deny, approve, policy)',
    ]);
    expect(errorsOf(parseConfigText('sources:\n  - url: https://x/mcp\n', F, {}))).toEqual([
      'thoughtgate.yaml:2:5: sources[0].name: required (expected string)',
    ]);
  });

  test('bad URLs', () => {
    const text = [
      'sources:', //                       1
      '  - name: a', //                    2
      '    url: mcp.example.com/mcp', //   3
      '  - name: b', //                    4
      '    url: "ftp://example.com/mcp"', // 5
      '  - name: c', //                    6
      '    url: https://me:pw@example.com/mcp', // 7
    ].join('\n');
    expect(errorsOf(parseConfigText(text, F, {}))).toEqual([
      'thoughtgate.yaml:3:10: sources[0].url: not a URL: "mcp.example.com/mcp"',
      'thoughtgate.yaml:5:10: sources[1].url: must be an http or https URL, got "ftp:"',
      'thoughtgate.yaml:7:10: sources[2].url: must not carry credentials; use headers with ${VAR} instead',
    ]);
  });

  test('a missing variable is reported once, at its value, in file order with the other errors', () => {
    const text = [
      'sources:', //                                    1
      '  - name: github', //                            2
      '    url: https://${MCP_HOST}/mcp', //            3
      '    headers:', //                                4
      '      Authorization: "Bearer ${GITHUB_TOKEN}"', // 5
      '      X-Bad: "${oops"', //                       6
      'defaultAction: allow', //                        7
    ].join('\n');
    expect(errorsOf(parseConfigText(text, F, { MCP_HOST: 'h' }))).toEqual([
      'thoughtgate.yaml:5:22: sources[0].headers.Authorization: environment variable GITHUB_TOKEN is not set',
      'thoughtgate.yaml:6:14: sources[0].headers.X-Bad: unterminated variable reference "${oops" (missing "}"); write $${ for a literal "${"',
      'thoughtgate.yaml:7:16: defaultAction: expected one of forward, deny, policy (for approval by default, end the rules with `match: {}` and `action: approve`)',
    ]);
    // The unresolved URL would also fail URL validation; only the variable is reported.
    expect(errorsOf(parseConfigText('sources:\n  - name: a\n    url: ${URL}\n', F, {}))).toEqual([
      'thoughtgate.yaml:3:10: sources[0].url: environment variable URL is not set',
    ]);
  });

  test("YAML syntax errors carry yaml's message and position, and nothing else is checked", () => {
    const text = [
      'sources:', //                        1
      '  - name: github', //                2
      '     url: https://x/mcp', //         3
      'defaultAction: nope', //             4
    ].join('\n');
    expect(errorsOf(parseConfigText(text, F, {}))).toEqual([
      'thoughtgate.yaml:2:11: Nested mappings are not allowed in compact mappings',
      'thoughtgate.yaml:2:11: Implicit keys need to be on a single line',
    ]);
    expect(errorsOf(parseConfigText('rules:\n  - match: { tool: [a, b }\n    action: deny\n', F, {}))[0]).toMatch(
      /^thoughtgate\.yaml:2:\d+: Flow sequence .* end with a \]$/,
    );
    expect(errorsOf(parseConfigText('defaultAction: deny\nrules: []\ndefaultAction: forward\n', F, {}))).toEqual([
      'thoughtgate.yaml:3:1: Map keys must be unique',
    ]);
    expect(errorsOf(parseConfigText('\tsources: []\n', F, {}))).toEqual(['thoughtgate.yaml:1:1: Tabs are not allowed as indentation']);
  });

  test('duplicate source names point at the second name', () => {
    const text = ['sources:', '  - name: github', '    url: https://a/mcp', '  - name: github', '    url: https://b/mcp', ''].join('\n');
    expect(errorsOf(parseConfigText(text, F, {}))).toEqual(['thoughtgate.yaml:4:11: sources[1].name: duplicate source name "github"']);
  });

  test('several documents, an empty file, a file of comments, a list, an unknown alias', () => {
    expect(errorsOf(parseConfigText('defaultAction: deny\n---\ndefaultAction: forward\n', F, {}))).toEqual([
      'thoughtgate.yaml:2:1: only one YAML document is allowed; remove this "---" and what follows, or merge it into the first document',
    ]);
    expect(configOf(parseConfigText('---\ndefaultAction: deny\n', F, {})).config.defaultAction).toBe('deny');
    const empty = 'thoughtgate.yaml: is empty; expected a mapping with "sources", "rules" and "defaultAction"';
    expect(errorsOf(parseConfigText('', F, {}))).toEqual([empty]);
    expect(errorsOf(parseConfigText('# nothing yet\n\n', F, {}))).toEqual([empty]);
    expect(errorsOf(parseConfigText('- name: a\n', F, {}))).toEqual(['thoughtgate.yaml:1:1: (top level): Invalid input: expected object, received array']);
    expect(errorsOf(parseConfigText('rules:\n  - *r\n', F, {}))).toEqual(['thoughtgate.yaml:2:5: unknown alias "*r" (no anchor "&r" before it)']);
  });

  test('unknown top-level key points at the key', () => {
    expect(errorsOf(parseConfigText('defaultAction: deny\n\nsource:\n  - name: a\n', F, {}))).toEqual([
      'thoughtgate.yaml:3:1: (top level): unknown key "source" (allowed: enforcement, sources, rules, defaultAction, cedar, egress, limits, server, approvals, rateLimits, a2a, identity, approvalChannels)',
    ]);
  });

  test('a byte-order mark is fine', () => {
    expect(parseConfigText('\uFEFFdefaultAction: deny\n', F, {}).ok).toBe(true);
  });
});

describe('configHash', () => {
  const a = [
    'sources:',
    '  - name: github',
    '    url: https://x/mcp',
    '    expose: { mode: allowlist, tools: [a, b] }',
    'rules:',
    '  - { match: { tool: "d*" }, action: deny }',
    'defaultAction: forward',
    '',
  ].join('\n');
  const b = [
    '# the same, written differently',
    'defaultAction: "forward"',
    'rules:',
    '- action: deny',
    '  match:',
    '    tool: d*',
    'sources:',
    '- url: "https://x/mcp"',
    '  expose:',
    '    tools:',
    '    - a',
    '    - b',
    '    mode: allowlist',
    '  name: github',
  ].join('\n');

  test('the same config written differently hashes the same', () => {
    expect(configOf(parseConfigText(b, F, {})).hash).toBe(configOf(parseConfigText(a, F, {})).hash);
  });

  test('the hash is of the text as written, so it never depends on secret ${VAR} values', () => {
    const t = 'sources:\n  - name: s\n    url: https://x/mcp\n    headers: { Authorization: "Bearer ${TOKEN}" }\n';
    expect(configOf(parseConfigText(t, F, { TOKEN: 'one' })).hash).toBe(configOf(parseConfigText(t, F, { TOKEN: 'two' })).hash);
  });

  test('a different config hashes differently', () => {
    expect(configOf(parseConfigText(a.replace('[a, b]', '[b, a]'), F, {})).hash).not.toBe(configOf(parseConfigText(a, F, {})).hash);
  });

  test('canonical JSON sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: [{ z: 1, y: undefined, x: 'é' }, null], c: { e: true, d: undefined } })).toBe(
      '{"a":[{"x":"é","z":1},null],"b":1,"c":{"e":true}}',
    );
    expect(configHash({ a: 1, b: 2 })).toBe(configHash({ b: 2, a: 1 }));
    expect(configHash({ a: 1 })).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tg-load-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads, names the file in errors', async () => {
    const p = join(dir, 'thoughtgate.yaml');
    writeFileSync(p, 'defaultAction: maybe\n');
    expect(await loadConfigFile(p, {})).toEqual({
      ok: false,
      errors: [
        `${p}:1:16: defaultAction: expected one of forward, deny, policy (for approval by default, end the rules with \`match: {}\` and \`action: approve\`)`,
      ],
    });
    writeFileSync(p, 'defaultAction: ${ACTION:-forward}\n');
    expect(configOf(await loadConfigFile(p, {})).config.defaultAction).toBe('forward');
  });

  test('a missing file or a directory is one clear error', async () => {
    const missing = join(dir, 'nope.yaml');
    expect(await loadConfigFile(missing, {})).toEqual({ ok: false, errors: [`${missing}: cannot read config file: no such file`] });
    expect(await loadConfigFile(dir, {})).toEqual({ ok: false, errors: [`${dir}: cannot read config file: is a directory`] });
  });
});
