// examples/thoughtgate.yaml is what the README tells people to run: it must stay valid.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from './load.js';

const examplePath = fileURLToPath(new URL('../../examples/thoughtgate.yaml', import.meta.url));

test('examples/thoughtgate.yaml loads with the default URL and with EVERYTHING_URL', async () => {
  const r = await loadConfigFile(examplePath, {});
  if (!r.ok) throw new Error(r.errors.join('\n'));
  expect(r.config.sources.map((s) => [s.name, s.url])).toEqual([['everything', 'http://127.0.0.1:3001/mcp']]);
  expect(r.config.defaultAction).toBe('forward');
  expect(r.config.rules.map((x) => x.action)).toEqual(['deny', 'policy']);
  expect(r.config.sources[0]!.expose.tools).not.toContain('get-env');

  const r2 = await loadConfigFile(examplePath, { EVERYTHING_URL: 'http://everything:3001/mcp' });
  expect(r2.ok && r2.config.sources[0]!.url).toBe('http://everything:3001/mcp');
});

test('its Cedar policies parse', async () => {
  const r = await loadConfigFile(examplePath, {});
  if (!r.ok) throw new Error(r.errors.join('\n'));
  expect(cedar.checkParsePolicySet({ staticPolicies: r.config.cedar!.policies })).toEqual({ type: 'success' });
});

test('the tools it names exist in @modelcontextprotocol/server-everything', async () => {
  const r = await loadConfigFile(examplePath, {});
  if (!r.ok) throw new Error(r.errors.join('\n'));
  // The reference server keeps one module per tool, named after the tool.
  const toolsDir = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/tools/', import.meta.url));
  const available = readdirSync(toolsDir)
    .filter((f) => f.endsWith('.js') && f !== 'index.js')
    .map((f) => f.slice(0, -3));
  expect(available).toEqual(expect.arrayContaining([...r.config.sources[0]!.expose.tools!, 'get-env']));
  const ruleTools = r.config.rules.map((x) => x.match.tool);
  expect(available).toEqual(expect.arrayContaining(ruleTools as string[]));
});

test('its policy permits get-sum only for a < 1000 (Cedar model of the design brief)', async () => {
  const r = await loadConfigFile(examplePath, {});
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const decide = (tool: string, args: Record<string, unknown>) => {
    const resource = { type: 'ThoughtGate::Tool', id: `everything/${tool}` };
    const answer = cedar.isAuthorized({
      principal: { type: 'ThoughtGate::Workload', id: 'default/demo-agent' },
      action: { type: 'ThoughtGate::Action', id: 'tools/call' },
      resource,
      context: { arguments: args, source: 'everything', method: 'tools/call' } as cedar.Context,
      policies: { staticPolicies: r.config.cedar!.policies },
      entities: [{ uid: resource, attrs: { name: tool, source: 'everything' }, parents: [] }],
    });
    if (answer.type !== 'success') throw new Error(JSON.stringify(answer.errors));
    return answer.response.decision;
  };
  expect(decide('get-sum', { a: 5, b: 7 })).toBe('allow');
  expect(decide('get-sum', { a: 999, b: 7 })).toBe('allow');
  expect(decide('get-sum', { a: 1000, b: 7 })).toBe('deny');
  expect(decide('get-sum', { b: 7 })).toBe('deny');
  expect(decide('echo', { a: 5 })).toBe('deny');
});
