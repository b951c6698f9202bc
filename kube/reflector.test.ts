// The reflector's loop over a scripted source (its own ListWatcher interface): the order of what it
// reports, relist diffs, hooks that throw, stop() at every phase. The same loop runs against a real
// kube-apiserver in e2e/kube.test.ts.
import { KubeError, type KubeObject, type WatchEvent } from './protocol.js';
import { startReflector, type Reflector } from './reflector.js';
import type { ListWatcher, WatchEnd, WatchOptions } from './resource.js';

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'a', resourceVersion: rv } });

interface OpenWatch {
  rv: string;
  emit(e: WatchEvent): void;
  end(): void;
  fail(err: unknown): void;
}

/** Lists answer from `lists` in turn (an Error is thrown); each watch waits for the test. */
function scripted(lists: Array<{ items: KubeObject[]; resourceVersion: string } | Error>) {
  const watches: OpenWatch[] = [];
  let listCalls = 0;
  const source: ListWatcher<KubeObject> = {
    description: 'test objects',
    async list() {
      const next = lists[Math.min(listCalls++, lists.length - 1)]!;
      if (next instanceof Error) throw next;
      return next;
    },
    watch(rv: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal, opts?: WatchOptions): Promise<WatchEnd> {
      return new Promise((resolve, reject) => {
        let events = 0;
        let last = rv;
        signal.addEventListener('abort', () => reject(signal.reason));
        opts?.onOpen?.();
        watches.push({
          rv,
          emit: (e) => {
            events++;
            last = e.type === 'BOOKMARK' ? e.resourceVersion : e.object.metadata.resourceVersion!;
            onEvent(e);
          },
          end: () => resolve({ resourceVersion: last, events }),
          fail: reject,
        });
      });
    },
  };
  return { source, watches, listCalls: () => listCalls };
}

async function until(what: string, f: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const running: Reflector<KubeObject>[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

describe('startReflector', () => {
  it('reports the first list as adds (when asked), then events, then a relist as a diff marked relist', async () => {
    const s = scripted([
      { items: [obj('x', '1'), obj('y', '1')], resourceVersion: '5' },
      { items: [obj('x', '1'), obj('z', '9')], resourceVersion: '9' },
    ]);
    const seen: string[] = [];
    const r = startReflector({
      source: s.source,
      addsOnFirstList: true,
      onChange: (c, relist) => seen.push(`${c.type} ${c.object.metadata.name}${relist ? ' (relist)' : ''}`),
      onList: (items, rv) => seen.push(`list ${items.length} @${rv}`),
    });
    running.push(r);
    await r.synced();
    await until('a watch', () => s.watches.length === 1);
    expect(s.watches[0]!.rv).toBe('5');
    s.watches[0]!.emit({ type: 'MODIFIED', object: obj('x', '6') });
    s.watches[0]!.emit({ type: 'BOOKMARK', resourceVersion: '7' });
    expect(r.state().resourceVersion).toBe('7');
    // 410: list again, and report only what differs from the store.
    s.watches[0]!.fail(new KubeError('gone', 'too old', 410));
    await until('the relist', () => r.state().counters.relists === 1 && s.watches.length === 2);
    expect(seen).toEqual(['add x', 'add y', 'list 2 @5', 'update x', 'update x (relist)', 'add z (relist)', 'delete y (relist)', 'list 2 @9']);
    expect(
      r
        .list('a')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['x', 'z']);
    expect(r.get('z', 'a')?.metadata.resourceVersion).toBe('9');
    expect(r.state().counters).toMatchObject({ lists: 2, watches: 2, events: 2, bookmarks: 1, relists: 1, failures: 0 });
  });

  it('leaves the first list unreported unless asked, and resumes from the last resourceVersion after a normal end', async () => {
    const s = scripted([{ items: [obj('x', '1')], resourceVersion: '3' }]);
    const seen: string[] = [];
    const r = startReflector({ source: s.source, onChange: (c) => seen.push(c.type) });
    running.push(r);
    await until('a watch', () => s.watches.length === 1);
    s.watches[0]!.emit({ type: 'ADDED', object: obj('y', '4') });
    s.watches[0]!.end();
    await until('the next watch', () => s.watches.length === 2);
    expect(s.watches[1]!.rv).toBe('4');
    expect(s.listCalls()).toBe(1);
    expect(seen).toEqual(['add']);
  });

  it('keeps going when a hook throws, and counts a failed list without marking it synced', async () => {
    const s = scripted([new KubeError('http', 'HTTP 503', 503), { items: [], resourceVersion: '1' }]);
    let failures = 0;
    const r = startReflector({
      source: s.source,
      backoffBaseMs: 1,
      backoffMaxMs: 2,
      onFailure: () => {
        failures++;
        throw new Error('a buggy hook');
      },
    });
    running.push(r);
    await r.synced();
    expect(failures).toBe(1);
    expect(r.state()).toMatchObject({ lastError: null, counters: { failures: 1, lists: 1 } });
    expect(r.isSynced()).toBe(true);
  });

  it('a change handler that throws loses no later change and does not end the watch', async () => {
    const s = scripted([{ items: [obj('x', '1')], resourceVersion: '1' }]);
    const seen: string[] = [];
    const errors: string[] = [];
    const r = startReflector({
      source: s.source,
      addsOnFirstList: true,
      onChange: (c) => {
        seen.push(`${c.type} ${c.object.metadata.name}`);
        if (c.object.metadata.name === 'bad') throw new Error('a buggy handler');
      },
      onChangeError: (err, c) => errors.push(`${c.object.metadata.name}: ${(err as Error).message}`),
    });
    running.push(r);
    await until('watching', () => s.watches.length === 1);
    s.watches[0]!.emit({ type: 'ADDED', object: obj('bad', '2') });
    s.watches[0]!.emit({ type: 'ADDED', object: obj('good', '3') });
    expect(seen).toEqual(['add x', 'add bad', 'add good']);
    expect(errors).toEqual(['bad: a buggy handler']);
    expect(r.state()).toMatchObject({ phase: 'watching', counters: { handlerErrors: 1, failures: 0 } });
    expect(r.get('good', 'a')).toBeDefined();
  });

  it('stops promptly while backing off, while watching, and twice', async () => {
    const s = scripted([new KubeError('network', 'refused')]);
    const r = startReflector({ source: s.source, backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    await until('a failure', () => r.state().phase === 'backoff');
    const t0 = Date.now();
    await r.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r.state().phase).toBe('closed');
    await r.stop();

    const w = scripted([{ items: [], resourceVersion: '1' }]);
    const r2 = startReflector({ source: w.source });
    await until('watching', () => r2.state().phase === 'watching');
    await r2.stop('bye');
    expect(r2.state().phase).toBe('closed');
    expect(r2.state().counters.failures).toBe(0);
  });

  it('cuts a silent watch (watchdog) and watches again without listing', async () => {
    const s = scripted([{ items: [], resourceVersion: '1' }]);
    let silent = 0;
    const r = startReflector({ source: s.source, watchdogMs: 30, onWatchdog: () => silent++ });
    running.push(r);
    await until('two watchdog restarts', () => r.state().counters.watchdogRestarts >= 2);
    expect(silent).toBeGreaterThanOrEqual(2);
    expect(s.listCalls()).toBe(1);
    expect(r.state().counters.failures).toBe(0);
  });
});

describe('startReflector transform and limits', () => {
  const inNs = (name: string, ns: string, rv: string, extra: Record<string, string> = {}): KubeObject => ({
    metadata: { name, namespace: ns, resourceVersion: rv, annotations: { ...extra } },
  });
  // Keeps the name, namespace and resourceVersion; leaves out objects annotated big.
  const slim = (o: KubeObject): KubeObject | null =>
    o.metadata.annotations?.['big']
      ? null
      : { metadata: { name: o.metadata.name, namespace: o.metadata.namespace, resourceVersion: o.metadata.resourceVersion } };

  it('stores what the transform keeps, leaves out what it refuses (counted, reported), and removes an object that stops passing', async () => {
    const s = scripted([{ items: [inNs('x', 'a', '1', { other: 'y' }), inNs('big', 'a', '1', { big: 'x'.repeat(1000) })], resourceVersion: '5' }]);
    const seen: string[] = [];
    const drops: string[] = [];
    const r = startReflector({
      source: s.source,
      addsOnFirstList: true,
      transform: slim,
      onChange: (c) => seen.push(`${c.type} ${c.object.metadata.name}`),
      onDrop: (o, reason) => drops.push(`${reason} ${o.metadata.name}`),
    });
    running.push(r);
    await r.synced();
    expect(r.get('x', 'a')).toEqual({ metadata: { name: 'x', namespace: 'a', resourceVersion: '1' } });
    expect(r.get('big', 'a')).toBeUndefined();
    await until('a watch', () => s.watches.length === 1);
    s.watches[0]!.emit({ type: 'ADDED', object: inNs('big2', 'a', '6', { big: 'yes' }) });
    // A deletion of an object never stored is not reported.
    s.watches[0]!.emit({ type: 'DELETED', object: inNs('big2', 'a', '7', { big: 'yes' }) });
    s.watches[0]!.emit({ type: 'MODIFIED', object: inNs('x', 'a', '8', { big: 'now' }) });
    expect(r.get('x', 'a')).toBeUndefined();
    expect(seen).toEqual(['add x', 'delete x']);
    expect(drops).toEqual(['filtered big', 'filtered big2', 'filtered x']);
    expect(r.state().dropped).toEqual({ filtered: 3, overLimit: 0 });
    expect(r.size()).toBe(0);
  });

  it('holds at most `limits` objects, in all and per namespace: new ones beyond are left out until there is room; updates of stored ones go on', async () => {
    const s = scripted([{ items: [inNs('a1', 'a', '1'), inNs('a2', 'a', '1'), inNs('a3', 'a', '1'), inNs('b1', 'b', '1')], resourceVersion: '5' }]);
    const drops: string[] = [];
    const r = startReflector({
      source: s.source,
      limits: { total: 4, perNamespace: 2 },
      onDrop: (o, reason) => drops.push(`${reason} ${o.metadata.namespace}/${o.metadata.name}`),
    });
    running.push(r);
    await r.synced();
    expect([r.size(), r.size('a'), r.size('b')]).toEqual([3, 2, 1]);
    await until('a watch', () => s.watches.length === 1);
    const w = s.watches[0]!;
    w.emit({ type: 'ADDED', object: inNs('b2', 'b', '6') });
    w.emit({ type: 'ADDED', object: inNs('c1', 'c', '7') }); // the store is full (4)
    w.emit({ type: 'MODIFIED', object: inNs('a1', 'a', '8') }); // a stored one: kept
    expect(r.get('a1', 'a')?.metadata.resourceVersion).toBe('8');
    w.emit({ type: 'DELETED', object: inNs('a2', 'a', '9') });
    w.emit({ type: 'MODIFIED', object: inNs('c1', 'c', '10') }); // now there is room
    expect(r.get('c1', 'c')).toBeDefined();
    expect(drops).toEqual(['limit a/a3', 'limit c/c1']);
    expect(r.state().dropped).toEqual({ filtered: 0, overLimit: 2 });
    expect([r.size(), r.size('a'), r.size('b'), r.size('c')]).toEqual([4, 1, 2, 1]);
  });

  it('on a relist over the limits, keeps what it held before newcomers', async () => {
    const s = scripted([
      { items: [inNs('m', 'a', '1')], resourceVersion: '5' },
      { items: [inNs('b', 'a', '6'), inNs('m', 'a', '1')], resourceVersion: '9' },
    ]);
    const r = startReflector({ source: s.source, limits: { total: 1 } });
    running.push(r);
    await r.synced();
    await until('a watch', () => s.watches.length === 1);
    s.watches[0]!.fail(new KubeError('gone', 'too old', 410));
    await until('the relist', () => r.state().counters.relists === 1 && s.watches.length === 2);
    expect(r.list().map((o) => o.metadata.name)).toEqual(['m']);
    expect(r.state().dropped.overLimit).toBe(1);
  });

  it('bounds what a list holds while its pages arrive: the store plus the limits; held objects stay, the rest is counted as dropped', async () => {
    const limits = { total: 50, perNamespace: 10 };
    const held = Array.from({ length: 5 }, (_, i) => inNs(`h${i}`, 'ns0', '1'));
    // The relist: 100 pages of 100 new objects over 20 namespaces, the held ones on the last page.
    const flood = Array.from({ length: 10_000 }, (_, i) => inNs(`n${i}`, `ns${i % 20}`, '6', { big: i % 7 === 0 ? 'yes' : '' }));
    const lists = [held, [...flood, ...held]];
    let listCalls = 0;
    let most = 0;
    let admitted = 0;
    const watches: OpenWatch[] = [];
    const base = scripted([]);
    const source: ListWatcher<KubeObject> = {
      description: 'paged test objects',
      async list(_signal, keep) {
        const all = lists[Math.min(listCalls++, lists.length - 1)]!;
        const items: KubeObject[] = [];
        for (let p = 0; p < all.length; p += 100) {
          await new Promise((r) => setImmediate(r));
          for (const o of all.slice(p, p + 100)) {
            const kept = keep ? keep(o) : o;
            if (kept) items.push(kept);
          }
          admitted = items.length;
          most = Math.max(most, items.length);
        }
        return { items, resourceVersion: String(listCalls * 10) };
      },
      watch: (rv, onEvent, signal, opts) => {
        const p = base.source.watch(rv, onEvent, signal, opts);
        watches.push(base.watches.at(-1)!);
        return p;
      },
    };
    const drops = { filtered: 0, limit: 0 };
    const r = startReflector({
      source,
      limits,
      transform: (o) => (o.metadata.annotations?.['big'] === 'yes' ? null : { metadata: { ...o.metadata, annotations: {} } }),
      onDrop: (_o, reason) => drops[reason]++,
    });
    running.push(r);
    await r.synced();
    expect(r.size()).toBe(5);
    await until('a watch', () => watches.length === 1);
    watches[0]!.fail(new KubeError('gone', 'too old', 410));
    await until('the relist', () => r.state().counters.relists === 1 && watches.length === 2);
    // Never more than the store (5) plus the limits held at once, whatever the list's length.
    expect(most).toBeLessThanOrEqual(held.length + limits.total);
    expect(admitted).toBeGreaterThanOrEqual(limits.total);
    for (const h of held) expect(r.get(h.metadata.name, 'ns0')).toBeDefined();
    expect(r.size()).toBe(limits.total);
    expect(r.size('ns0')).toBeLessThanOrEqual(limits.perNamespace);
    const filtered = flood.filter((o) => o.metadata.annotations?.['big'] === 'yes').length;
    expect(r.state().dropped).toEqual({ filtered, overLimit: flood.length - filtered + held.length - limits.total });
    expect(drops).toEqual({ filtered, limit: r.state().dropped.overLimit });
  });
});
