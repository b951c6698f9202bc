// What one JSON-RPC message asks for, in the terms the gates speak: method, the named target
// (tool, resource or prompt) and the arguments. Pure. A2A calls are described by a2a-operation.ts
// into the same Operation (target kind `skill`, facts in `a2a`).
//
// Resource URIs are put in canonical form (api/resource-uri.ts) before any gate sees them, and the
// message is forwarded with that form, so the upstream reads exactly the resource that was decided
// on. Tool and prompt names are not normalised: servers look them up exactly (the SDK's McpServer
// indexes a plain object by the name as sent), so the spelling the gates see is the one that runs.
import { canonicalUri, canonicalUriTemplate } from '../../api/resource-uri.js';
import { replaceJsonString } from '../../lib/json-splice.js';

/** What MCP messages name. */
export type McpTargetKind = 'tool' | 'resource' | 'prompt';
export type TargetKind = McpTargetKind | 'skill';

/** A2A: how a message part is counted (kinds unified across 0.3 and 1.0; a2a-operation.ts). */
export interface A2aPart {
  kind: 'text' | 'url' | 'raw' | 'data';
  /** As the part declares it (1.0 mediaType, 0.3 file mimeType); "" when none. */
  mediaType: string;
  /** UTF-8 length of text, decoded length of raw bytes, canonical-JSON length of data, 0 for url. */
  bytes: number;
  /** url parts: the URL's host (lowercase, port included when given); "" otherwise. */
  host: string;
}

/**
 * What an A2A call carries besides its method and skill, as gates 2–3 read it (Cedar's context,
 * policy/cedar/evaluate.ts). Strings are "" and lists [] when the call has none: Cedar has no null.
 */
export interface A2aFacts {
  version: '1.0' | '0.3';
  binding: 'jsonrpc' | 'rest';
  /** The skill named at a2a.skillFrom; "" when none (also the target, when set). */
  skill: string;
  parts: A2aPart[];
  /**
   * The parts' kinds, media types and url hosts, each without repeats: Cedar cannot quantify over
   * `parts` (`context.partKinds.contains("url")`, `context.urlHosts.containsAny([…])`).
   */
  partKinds: string[];
  mediaTypes: string[];
  urlHosts: string[];
  /** The url parts' schemes (`https`, `data`, `file`…), without repeats; allow-list them: `["https"].containsAll(context.urlSchemes)`. */
  urlSchemes: string[];
  partCount: number;
  totalBytes: number;
  /** The task the call names (GetTask's id, a continued message's taskId…). */
  taskId: string;
  contextId: string;
  referenceTaskIds: string[];
  /** A webhook URL the client gives (push config, or inside a send). */
  pushUrl: string;
  /** Whether that push config hands the agent credentials (authentication.credentials); never their value. */
  pushAuth: boolean;
  /** 1.0: the tenant (REST path segment, body or params `tenant`; they must agree). */
  tenant: string;
  /** The request's own metadata (params.metadata, not the message's); {} when none. */
  requestMetadata: Record<string, unknown>;
  /** The extensions the call asks the agent to activate (A2A-Extensions / X-A2A-Extensions, a2a-extensions.ts): distinct URIs, [] when none. */
  extensions: string[];
  /** The text parts, data parts' string leaves and text/* raw parts decoded, joined by "\n": only when asked for (some Cedar policy reads context.text). */
  text?: string;
}

export interface Operation {
  source: string;
  /** MCP: the method as sent. A2A: the canonical (1.0) name, whichever generation was sent. */
  method: string;
  target: { kind: TargetKind; name: string } | null;
  /** MCP: the tool, prompt or completion arguments. A2A: the message's metadata. */
  arguments: unknown;
  /** Set for A2A calls only. */
  a2a?: A2aFacts;
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
  'prompts/list',
  'logging/setLevel',
  'tasks/get',
  'tasks/result',
  'tasks/list',
  'tasks/cancel',
  'server/discover',
  'subscriptions/listen',
]);

/** An MCP message's operation: its target is a tool, resource or prompt. */
export interface McpOperation extends Operation {
  target: { kind: McpTargetKind; name: string } | null;
  a2a?: undefined;
}

export type Described =
  | {
      ok: true;
      op: McpOperation;
      /** Set when a resource URI was not canonical: where it is in the message, and its canonical form. */
      rewrite?: { path: readonly string[]; value: string };
    }
  | { ok: false; reason: string };

function record(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** Reads the operation out of a request or notification. A governed method without its target is refused. */
export function describe(source: string, method: string, params: unknown): Described {
  const p = record(params);
  const op = (target: McpOperation['target'], args: unknown, governed = true): Described => ({
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
    case 'resources/subscribe':
    case 'resources/unsubscribe': {
      const uri = p?.['uri'];
      if (typeof uri !== 'string') return { ok: false, reason: `${method} needs params.uri (a string)` };
      const c = canonicalUri(uri);
      if (!c.ok) return { ok: false, reason: `params.uri is not a resource URI ThoughtGate can compare: ${c.reason}` };
      // Unsubscribing acts on nothing, so it stays plumbing; it still carries its target so that a
      // hidden URI is probed, and goes upstream in the form its subscribe went.
      const d = op({ kind: 'resource', name: c.uri }, undefined, method !== 'resources/unsubscribe');
      return c.uri === uri || !d.ok ? d : { ...d, rewrite: { path: ['params', 'uri'], value: c.uri } };
    }
    case 'completion/complete': {
      const ref = record(p?.['ref']);
      if (ref?.['type'] === 'ref/prompt' && typeof ref['name'] === 'string') return op({ kind: 'prompt', name: ref['name'] }, p?.['argument']);
      if (ref?.['type'] === 'ref/resource' && typeof ref['uri'] === 'string') {
        const uri = ref['uri'];
        const c = canonicalUriTemplate(uri);
        if (!c.ok) return { ok: false, reason: `params.ref.uri is not a resource URI template ThoughtGate can compare: ${c.reason}` };
        const d = op({ kind: 'resource', name: c.uri }, p?.['argument']);
        return c.uri === uri || !d.ok ? d : { ...d, rewrite: { path: ['params', 'ref', 'uri'], value: c.uri } };
      }
      return { ok: false, reason: 'completion/complete needs params.ref with a prompt name or resource uri' };
    }
    default:
      if (PLUMBING.has(method) || method.startsWith('notifications/')) return op(null, undefined, false);
      // Unknown methods are governed: a new verb must not slip past the defaultAction.
      return op(null, p?.['arguments']);
  }
}

/**
 * describe() for a parsed message, with `raw`: the message text to forward when a resource URI
 * was rewritten to its canonical form (every other byte, the id's exact text included, as sent).
 */
export function describeMessage(source: string, m: { method: string; params: unknown; raw: string }): Described & { raw?: string } {
  const d = describe(source, m.method, m.params);
  if (!d.ok || !d.rewrite) return d;
  const raw = replaceJsonString(m.raw, d.rewrite.path, d.rewrite.value);
  if (raw === null) return { ok: false, reason: 'the resource URI could not be rewritten to its canonical form' };
  return { ...d, raw };
}
