import { rawId } from '../../lib/jsonrpc.js';
import { InflightIds } from './inflight.js';

test('an id in flight is refused in its session in any spelling, free in others, and free again once released', () => {
  const sizes: number[] = [];
  const t = new InflightIds((n) => sizes.push(n));
  const a = t.claim('s1', [rawId(1), rawId('x')]);
  expect(a.ok).toBe(true);
  expect(t.claim('s1', [rawId('1')])).toMatchObject({ ok: false });
  expect(t.claim('s1', [rawId(2), rawId('x')])).toMatchObject({ ok: false, id: { value: 'x' } });
  const other = t.claim('s2', [rawId(1)]);
  expect(other.ok).toBe(true);
  if (a.ok) {
    a.release();
    a.release();
  }
  const again = t.claim('s1', [rawId(1)]);
  expect(again.ok).toBe(true);
  if (again.ok) again.release();
  if (other.ok) other.release();
  expect(t.size).toBe(0);
  expect(sizes.at(-1)).toBe(0);
});
