import { selectionOrder, selectPolicy, type Selectable } from './select.js';

const p = (name: string, priority: number, podSelector?: Selectable['podSelector']): Selectable => ({ name, priority, podSelector });

describe('selectPolicy', () => {
  it('picks the highest priority among matching policies, whatever the list order', () => {
    const list = [p('low', -5), p('high', 100, { matchLabels: { app: 'agent' } }), p('mid', 10)];
    expect(selectPolicy(list, { app: 'agent' })?.name).toBe('high');
    expect(selectPolicy(list, { app: 'other' })?.name).toBe('mid');
    expect(selectPolicy(list, {})?.name).toBe('mid');
  });

  it('breaks priority ties by name, by code unit and not by locale', () => {
    expect(selectPolicy([p('b', 1), p('a', 1), p('c', 1)], {})?.name).toBe('a');
    // "Z" (0x5A) sorts before "a" (0x61); localeCompare would say otherwise.
    expect(selectPolicy([p('a', 0), p('Z', 0)], {})?.name).toBe('Z');
    expect(selectionOrder([p('b', 0), p('a', 0), p('c', 2), p('d', -1)]).map((x) => x.name)).toEqual(['c', 'a', 'b', 'd']);
  });

  it('treats an absent or empty podSelector as matching every pod', () => {
    expect(selectPolicy([p('all', 0)], { anything: 'x' })?.name).toBe('all');
    expect(selectPolicy([p('empty', 0, {})], {})?.name).toBe('empty');
  });

  it('applies matchExpressions: In, NotIn, Exists, DoesNotExist, together with matchLabels', () => {
    const list = [
      p('in', 40, { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold', 'silver'] }] }),
      p('notin', 30, { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }], matchLabels: { team: 'a' } }),
      p('exists', 20, { matchExpressions: [{ key: 'agent', operator: 'Exists' }] }),
      p('absent', 10, { matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }] }),
    ];
    expect(selectPolicy(list, { tier: 'gold' })?.name).toBe('in');
    expect(selectPolicy(list, { tier: 'bronze', team: 'a' })?.name).toBe('notin');
    expect(selectPolicy(list, { team: 'a', env: 'prod', agent: '' })?.name).toBe('exists');
    expect(selectPolicy(list, { team: 'b' })?.name).toBe('absent');
    expect(selectPolicy(list, { legacy: 'yes' })).toBeNull();
  });

  it('returns null when nothing matches or there are no policies', () => {
    expect(selectPolicy([p('x', 0, { matchLabels: { app: 'x' } })], { app: 'y' })).toBeNull();
    expect(selectPolicy([], { app: 'y' })).toBeNull();
  });

  it('does not reorder its input', () => {
    const list = [p('b', 0), p('a', 5)];
    selectPolicy(list, {});
    expect(list.map((x) => x.name)).toEqual(['b', 'a']);
  });
});
