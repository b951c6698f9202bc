// A small, strict RFC 6902 applier. Strict where the apiserver (evanphx/json-patch) is: `add` into a
// missing parent, a bad array index or a failed `test` is an error, so a patch that passes here
// does not fail there. Used by the tests and the benchmark; the webhook itself only builds patches.
import type { JsonPatchOp } from './mutate.js';

export class JsonPatchError extends Error {}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new JsonPatchError(`bad JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

function arrayIndex(arr: unknown[], token: string, forAdd: boolean, path: string): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new JsonPatchError(`bad array index "${token}" in ${path}`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new JsonPatchError(`index ${i} out of range in ${path}`);
  return i;
}

/** The parent container and last token of `path`; the parent must exist. */
function locate(doc: unknown, path: string): { parent: Container; key: string } {
  const tokens = parsePointer(path);
  if (!tokens.length) throw new JsonPatchError('operations on the document root are not supported');
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false, path)];
    else if (isContainer(cur) && Object.hasOwn(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else throw new JsonPatchError(`missing parent for ${path}`);
  }
  if (!isContainer(cur)) throw new JsonPatchError(`parent of ${path} is not an object or array`);
  return { parent: cur, key: tokens[tokens.length - 1]! };
}

function get(doc: unknown, path: string): unknown {
  const { parent, key } = locate(doc, path);
  if (Array.isArray(parent)) return parent[arrayIndex(parent, key, false, path)];
  if (!Object.hasOwn(parent, key)) throw new JsonPatchError(`no value at ${path}`);
  return parent[key];
}

function add(doc: unknown, path: string, value: unknown): void {
  const { parent, key } = locate(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true, path), 0, value);
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
}

function remove(doc: unknown, path: string): unknown {
  const { parent, key } = locate(doc, path);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, key, false, path), 1)[0];
  if (!Object.hasOwn(parent, key)) throw new JsonPatchError(`no value at ${path}`);
  const old = parent[key];
  delete parent[key];
  return old;
}

/** Returns a patched deep copy; the input is not modified. */
export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  const out = structuredClone(doc);
  for (const op of ops) {
    const value = structuredClone(op.value);
    switch (op.op) {
      case 'add':
        add(out, op.path, value);
        break;
      case 'remove':
        remove(out, op.path);
        break;
      case 'replace':
        remove(out, op.path);
        add(out, op.path, value);
        break;
      case 'test':
        if (JSON.stringify(get(out, op.path)) !== JSON.stringify(op.value)) throw new JsonPatchError(`test failed at ${op.path}`);
        break;
      case 'move':
        add(out, op.path, remove(out, op.from ?? ''));
        break;
      case 'copy':
        add(out, op.path, structuredClone(get(out, op.from ?? '')));
        break;
      default:
        throw new JsonPatchError(`unknown op ${(op as { op: string }).op}`);
    }
  }
  return out;
}
