// What one JSON-RPC message asks for, in the terms the gates speak: method, the named target
// (tool, resource or prompt) and the arguments. Pure.

export type TargetKind = 'tool' | 'resource' | 'prompt';

export interface Operation {
  source: string;
  method: string;
  target: { kind: TargetKind; name: string } | null;
  arguments: unknown;
  /**
   * Governed operations act on the world (call a tool, read a resource…): rules without a
   * `method` key and the defaultAction apply to them. Protocol plumbing (initialize, ping, lists,
   * notifications, tasks/*) always flows unless a rule names its method explicitly, so that
   * `defaultAction: deny` still lets a client connect and list what it may use.
   */
  governed: boolean;
}

/** Plumbing methods: they carry no operation of their own. */
const PLUMBING = new Set([
  'initialize',
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/unsubscribe',
  'prompts/list',
  'logging/setLevel',
  'tasks/get',
  'tasks/result',
  'tasks/list',
  'tasks/cancel',
  'server/discover',
  'subscriptions/listen',
]);

export type Described = { ok: true; op: Operation } | { ok: false; reason: string };

function record(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** Reads the operation out of a request or notification. A governed method without its target is refused. */
export function describe(source: string, method: string, params: unknown): Described {
  const p = record(params);
  const op = (target: Operation['target'], args: unknown, governed = true): Described => ({
    ok: true,
    op: { source, method, target, arguments: args, governed },
  });
  switch (method) {
    case 'tools/call': {
      const name = p?.['name'];
      if (typeof name !== 'string') return { ok: false, reason: 'tools/call needs params.name (a string)' };
      return op({ kind: 'tool', name }, p?.['arguments']);
    }
    case 'prompts/get': {
      const name = p?.['name'];
      if (typeof name !== 'string') return { ok: false, reason: 'prompts/get needs params.name (a string)' };
      return op({ kind: 'prompt', name }, p?.['arguments']);
    }
    case 'resources/read':
    case 'resources/subscribe': {
      const uri = p?.['uri'];
      if (typeof uri !== 'string') return { ok: false, reason: `${method} needs params.uri (a string)` };
      return op({ kind: 'resource', name: uri }, undefined);
    }
    case 'completion/complete': {
      const ref = record(p?.['ref']);
      if (ref?.['type'] === 'ref/prompt' && typeof ref['name'] === 'string') return op({ kind: 'prompt', name: ref['name'] }, p?.['argument']);
      if (ref?.['type'] === 'ref/resource' && typeof ref['uri'] === 'string') return op({ kind: 'resource', name: ref['uri'] }, p?.['argument']);
      return { ok: false, reason: 'completion/complete needs params.ref with a prompt name or resource uri' };
    }
    default:
      if (PLUMBING.has(method) || method.startsWith('notifications/')) return op(null, undefined, false);
      // Unknown methods are governed: a new verb must not slip past the defaultAction.
      return op(null, p?.['arguments']);
  }
}
