// Name → canonical addresses for the forward proxy, through the system resolver (getaddrinfo, so
// /etc/hosts and the pod's DNS are honoured, like any client in the pod). Bounded: a lookup
// timeout, a cache with a short ttl and a size cap, and a cap on lookups in flight (getaddrinfo
// runs on libuv's small thread pool, shared with file I/O).
import dns from 'node:dns';
import os from 'node:os';
import { canonicalAddress } from '../../lib/destination.js';

export type LookupFn = (name: string) => Promise<{ address: string }[]>;

export type ResolveFailure = 'notfound' | 'timeout' | 'busy';

export class ResolveError extends Error {
  constructor(
    readonly kind: ResolveFailure,
    name: string,
  ) {
    super(
      kind === 'timeout' ? `DNS lookup of ${name} timed out` : kind === 'busy' ? 'too many DNS lookups in flight; retry shortly' : `${name} does not resolve`,
    );
  }
}

export interface ResolverMetrics {
  lookup(result: 'hit' | 'miss' | 'error' | 'timeout' | 'busy'): void;
  cacheSize(n: number): void;
}

export interface ResolverOptions {
  ttlMs?: number;
  maxEntries?: number;
  timeoutMs?: number;
  maxInFlight?: number;
  lookup?: LookupFn;
  metrics?: ResolverMetrics;
  now?: () => number;
}

export const RESOLVER_DEFAULTS = { ttlMs: 10_000, maxEntries: 1024, timeoutMs: 5_000, maxInFlight: 64 } as const;

// IPv4 first: one address is connected to (the one checked), and services on "localhost" mostly
// listen on 127.0.0.1 only.
const systemLookup: LookupFn = (name) => dns.promises.lookup(name, { all: true, verbatim: false });

export class Resolver {
  private cache = new Map<string, { addresses: string[]; expires: number }>();
  private inflight = new Map<string, Promise<string[]>>();
  private readonly o: Required<Omit<ResolverOptions, 'metrics'>> & { metrics?: ResolverMetrics };

  constructor(o: ResolverOptions = {}) {
    this.o = { ...RESOLVER_DEFAULTS, lookup: systemLookup, now: Date.now, ...o };
  }

  /** Canonical addresses of a canonical name, in the resolver's order (the first is connected to). */
  resolve(name: string): Promise<string[]> {
    const now = this.o.now();
    const hit = this.cache.get(name);
    if (hit && hit.expires > now) {
      this.o.metrics?.lookup('hit');
      return Promise.resolve(hit.addresses);
    }
    if (hit) this.cache.delete(name);
    const pending = this.inflight.get(name);
    if (pending !== undefined) return pending;
    if (this.inflight.size >= this.o.maxInFlight) {
      this.o.metrics?.lookup('busy');
      return Promise.reject(new ResolveError('busy', name));
    }
    this.o.metrics?.lookup('miss');
    const p = this.lookupBounded(name).finally(() => this.inflight.delete(name));
    this.inflight.set(name, p);
    return p;
  }

  private async lookupBounded(name: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ResolveError('timeout', name)), this.o.timeoutMs);
    });
    try {
      const answers = await Promise.race([this.o.lookup(name), timeout]);
      const addresses = [...new Set(answers.map((a) => canonicalAddress(a.address)).filter((a): a is string => a !== null))];
      if (addresses.length === 0) throw new ResolveError('notfound', name);
      this.store(name, addresses);
      return addresses;
    } catch (err) {
      if (err instanceof ResolveError) {
        this.o.metrics?.lookup(err.kind === 'timeout' ? 'timeout' : 'error');
        throw err;
      }
      this.o.metrics?.lookup('error');
      throw new ResolveError('notfound', name);
    } finally {
      clearTimeout(timer);
    }
  }

  private store(name: string, addresses: string[]): void {
    // Oldest first out: a Map iterates in insertion order.
    while (this.cache.size >= this.o.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(name, { addresses, expires: this.o.now() + this.o.ttlMs });
    this.o.metrics?.cacheSize(this.cache.size);
  }

  get size(): number {
    return this.cache.size;
  }
}

/** This host's interface addresses, canonical (re-read at most every few seconds). */
export function ownAddresses(ttlMs = 5_000): () => ReadonlySet<string> {
  let at = -Infinity;
  let set: ReadonlySet<string> = new Set();
  return () => {
    if (Date.now() - at < ttlMs) return set;
    const next = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) {
      for (const i of list ?? []) {
        const a = canonicalAddress(i.address.split('%')[0]!);
        if (a) next.add(a);
      }
    }
    set = next;
    at = Date.now();
    return set;
  };
}
