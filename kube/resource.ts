// One generic client for any resource type: get, list, watch, create, replace, patch (merge, JSON
// patch, server-side apply), delete, and the status subresource. Paths come from the type
// (kube/protocol.ts), errors are KubeErrors with a category (404, 409, 410, 429, 5xx + Retry-After).
import {
  decodeList,
  decodeObject,
  decodeWatchLine,
  errorFromResponse,
  hasName,
  KubeError,
  LineSplitter,
  listPath,
  resourcePath,
  watchPath,
  watchTimeoutSeconds,
  type KubeObject,
  type ObjectCheck,
  type ResourceType,
  type Selector,
  type WatchEvent,
} from './protocol.js';
import type { Response, Transport } from './transport.js';

/** Objects per list page, as client-go's informers ask; halved for a page over the transport's bound. */
export const LIST_PAGE_SIZE = 500;

/** merge: RFC 7386 JSON merge patch. json: RFC 6902 JSON patch. apply: server-side apply (a manifest). */
export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface WatchOptions {
  /** Ask the server to end the watch after this long (it does so cleanly; watch again). Default 5–10 min. */
  timeoutSeconds?: number | undefined;
  /** Called once the server accepted the watch (200 and headers). */
  onOpen?: () => void;
}

export interface WatchEnd {
  /** The newest resourceVersion seen (from events and bookmarks): where to resume. */
  resourceVersion: string;
  /** Events delivered, bookmarks included. */
  events: number;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

/** A list and a watch of one selection: what a reflector needs. */
export interface ListWatcher<T extends KubeObject> {
  /** For messages: "ConfigMaps in team-a". */
  readonly description: string;
  /**
   * `keep`: applied to each object as its page arrives (null leaves it out), so a list holds only
   * what the caller keeps, never every page of whole objects at once (the reflector's `transform`
   * and `limits`).
   */
  list(signal: AbortSignal, keep?: (obj: T) => T | null): Promise<ListResult<T>>;
  /**
   * Watches from `resourceVersion`. Resolves when the server ends the stream (normal, every
   * timeoutSeconds); rejects with a KubeError ('gone': list again), or with `signal.reason` once
   * aborted. `onEvent` is called in stream order; if it throws, the watch ends with that error.
   */
  watch(resourceVersion: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal, opts?: WatchOptions): Promise<WatchEnd>;
}

export interface WriteOptions {
  namespace?: string;
  /** Write the status subresource (needs RBAC on <plural>/status). */
  status?: boolean;
  fieldManager?: string;
  /** Server-side apply: take over fields other managers own. */
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface ResourceClient<T extends KubeObject> {
  readonly type: ResourceType;
  /** The object, or null when it does not exist. */
  get(name: string, namespace?: string, signal?: AbortSignal): Promise<T | null>;
  /** Every page of the selection (namespace undefined: all namespaces), with the resourceVersion to watch from. */
  list(sel?: Selector & { namespace?: string; limit?: number }, signal?: AbortSignal, keep?: (obj: T) => T | null): Promise<ListResult<T>>;
  listWatch(sel?: Selector & { namespace?: string }): ListWatcher<T>;
  /** A 409 (category 'conflict') when the name is taken. */
  create(obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT: a 409 when obj.metadata.resourceVersion is stale. */
  replace(obj: T, opts?: WriteOptions): Promise<T>;
  patch(name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<T>;
  /** Server-side apply of `obj` (fieldManager required). */
  apply(obj: T, opts: WriteOptions & { fieldManager: string }): Promise<T>;
  /** Deletes; false when it was already gone. `preconditions` guard against deleting a newer object. */
  delete(
    name: string,
    opts?: WriteOptions & { preconditions?: { uid?: string; resourceVersion?: string }; propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' },
  ): Promise<boolean>;
}

export interface ResourceClientOptions<T extends KubeObject> {
  /** Checked on every object read; default: has a name. */
  is?: ObjectCheck<T>;
  /** What a 403 means is missing, for messages: "create on approvalrequests (the thoughtgate-sidecar Role)". */
  rbacHint?: string;
}

export function resourceClient<T extends KubeObject>(transport: Transport, type: ResourceType, o: ResourceClientOptions<T> = {}): ResourceClient<T> {
  const is = o.is ?? (hasName as ObjectCheck<T>);
  const article = /^[AEIOU]/.test(type.kind) ? 'an' : 'a';
  const kindText = `${article} ${type.kind}`;
  const rbac = (verb: string) => o.rbacHint ?? `${verb} on ${type.plural}`;
  const where = (name: string, namespace?: string) => `${type.kind} ${namespace ? `${namespace}/` : ''}${name}`;

  const fail = (r: Response, what: string, verb: string): KubeError => errorFromResponse(r.status, r.body, what, rbac(verb), r.headers['retry-after']);

  const query = (opts: WriteOptions, extra: Record<string, string> = {}): string => {
    const q = new URLSearchParams(extra);
    if (opts.fieldManager) q.set('fieldManager', opts.fieldManager);
    if (opts.force) q.set('force', 'true');
    if (opts.dryRun) q.set('dryRun', 'All');
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  const write = async (
    method: 'POST' | 'PUT' | 'PATCH',
    path: string,
    body: unknown,
    contentType: string,
    what: string,
    verb: string,
    signal: AbortSignal | undefined,
    ok: number[],
  ): Promise<T> => {
    const r = await transport.request({ method, path, body: JSON.stringify(body), contentType, signal, what });
    if (!ok.includes(r.status)) throw fail(r, what, verb);
    return decodeObject(r.body, what, is, kindText);
  };

  const collection = (namespace: string | undefined) => resourcePath(type, namespace !== undefined ? { namespace } : {});

  const list = async (
    sel: Selector & { namespace?: string; limit?: number } = {},
    signal?: AbortSignal,
    keep?: (obj: T) => T | null,
  ): Promise<ListResult<T>> => {
    const what = `list ${type.plural}${sel.namespace ? ` in ${sel.namespace}` : ''}`;
    const items: T[] = [];
    let cont: string | undefined;
    // Always paged: the transport bounds each response (maxBodyBytes), not the whole list. A page
    // over the bound is asked for again at half the size; one object always fits (etcd's limit).
    let limit = sel.limit ?? LIST_PAGE_SIZE;
    for (;;) {
      let path = listPath(collection(sel.namespace), sel);
      const extra = new URLSearchParams();
      extra.set('limit', String(limit));
      if (cont) extra.set('continue', cont);
      path += `${path.includes('?') ? '&' : '?'}${extra.toString()}`;
      let r: Awaited<ReturnType<Transport['request']>>;
      try {
        r = await transport.request({ path, signal, what });
      } catch (err) {
        if (err instanceof KubeError && err.tooLarge && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 2));
          continue;
        }
        throw err;
      }
      if (r.status !== 200) throw fail(r, what, 'list');
      const page = decodeList(r.body, what, is);
      if (!keep) items.push(...page.items);
      else
        for (const obj of page.items) {
          const kept = keep(obj);
          if (kept) items.push(kept);
        }
      // The first page's snapshot is the list's: pages after it come from the same one.
      if (!page.continue) return { items, resourceVersion: page.resourceVersion };
      cont = page.continue;
    }
  };

  const watch = async (
    sel: Selector & { namespace?: string },
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
    opts: WatchOptions = {},
  ): Promise<WatchEnd> => {
    const what = `watch ${type.plural}${sel.namespace ? ` in ${sel.namespace}` : ''}`;
    const path = watchPath(collection(sel.namespace), sel, resourceVersion, opts.timeoutSeconds ?? watchTimeoutSeconds());
    const r = await transport.stream({ path, signal, what });
    if (!('stream' in r)) throw fail(r, what, 'watch');
    opts.onOpen?.();
    const splitter = new LineSplitter(transport.maxBodyBytes);
    let rv = resourceVersion;
    let events = 0;
    let callbackError: unknown;
    try {
      for await (const chunk of r.stream) {
        for (const line of splitter.push(chunk)) {
          const e = decodeWatchLine(line, is, kindText);
          if (!e) continue;
          rv = e.type === 'BOOKMARK' ? e.resourceVersion : (e.object.metadata.resourceVersion ?? rv);
          events++;
          try {
            onEvent(e);
          } catch (err) {
            callbackError = err;
            throw err;
          }
        }
      }
    } catch (err) {
      r.stream.destroy();
      if (signal.aborted) throw signal.reason;
      if (err === callbackError) throw err;
      throw transport.networkError(err, what);
    }
    if (signal.aborted) throw signal.reason;
    if (splitter.pending > 0) throw new KubeError('network', `${what}: the stream ended inside an event`);
    return { resourceVersion: rv, events };
  };

  const patch = async (name: string, body: unknown, patchType: PatchType, opts: WriteOptions = {}): Promise<T> => {
    if (patchType === 'apply' && !opts.fieldManager) throw new KubeError('config', 'server-side apply needs a fieldManager');
    return write(
      'PATCH',
      objectPath(name, opts) + query(opts),
      body,
      PATCH_CONTENT_TYPE[patchType],
      `patch ${where(name, opts.namespace)}${opts.status ? ' status' : ''}`,
      'patch',
      opts.signal,
      [200, 201],
    );
  };

  const objectPath = (name: string, opts: WriteOptions) =>
    resourcePath(type, { namespace: opts.namespace, name, ...(opts.status ? { subresource: 'status' } : {}) });
  const nsOf = (obj: T, opts: WriteOptions) => opts.namespace ?? obj.metadata.namespace;

  return {
    type,

    async get(name, namespace, signal) {
      const what = `get ${where(name, namespace)}`;
      const r = await transport.request({ path: resourcePath(type, { namespace, name }), signal, what });
      if (r.status === 404) return null;
      if (r.status !== 200) throw fail(r, what, 'get');
      return decodeObject(r.body, what, is, kindText);
    },

    list,

    listWatch(sel = {}) {
      return {
        description: `${type.plural}${sel.namespace ? ` in ${sel.namespace}` : ''}`,
        list: (signal, keep) => list(sel, signal, keep),
        watch: (rv, onEvent, signal, opts) => watch(sel, rv, onEvent, signal, opts),
      };
    },

    create(obj, opts = {}) {
      const namespace = nsOf(obj, opts);
      return write(
        'POST',
        collection(namespace) + query(opts),
        obj,
        'application/json',
        `create ${where(obj.metadata.name, namespace)}`,
        'create',
        opts.signal,
        [200, 201, 202],
      );
    },

    replace(obj, opts = {}) {
      const o2 = { ...opts, namespace: nsOf(obj, opts) };
      return write(
        'PUT',
        objectPath(obj.metadata.name, o2) + query(opts),
        obj,
        'application/json',
        `replace ${where(obj.metadata.name, o2.namespace)}${opts.status ? ' status' : ''}`,
        'update',
        opts.signal,
        [200, 201],
      );
    },

    patch,

    apply(obj, opts) {
      return patch(obj.metadata.name, obj, 'apply', { ...opts, namespace: nsOf(obj, opts) });
    },

    async delete(name, opts = {}) {
      const what = `delete ${where(name, opts.namespace)}`;
      const body = {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        ...(opts.preconditions ? { preconditions: opts.preconditions } : {}),
        ...(opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : {}),
      };
      const r = await transport.request({
        method: 'DELETE',
        path: objectPath(name, opts) + query(opts),
        body: JSON.stringify(body),
        contentType: 'application/json',
        signal: opts.signal,
        what,
      });
      if (r.status === 404) return false;
      if (r.status !== 200 && r.status !== 202) throw fail(r, what, 'delete');
      return true;
    },
  };
}
