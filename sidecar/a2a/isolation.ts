// Task isolation and push egress as the A2A data path calls them: the hooks handler.ts takes
// (A2aHooks: beforeForward, readsAnswer, onAnswer). Typed structurally by the few members read, so
// this module and the handler do not import each other.
//
// beforeForward: a task/context the caller does not own → TASK_NOT_FOUND as the agent words it;
//   a Send* starting a task faster than a2a.tasks.rate → RATE_LIMITED, or from a new client when
//   a2a.tasks.maxOwners clients hold tasks → OVERLOADED; a push URL egress refuses →
//   PUSH_URL_NOT_ALLOWED. Nothing is forwarded.
// onAnswer: a Send*'s answer passes the id scanner (ids recorded before they are written); a
//   ListTasks answer is read (bounded) and filtered to the caller's tasks.
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { A2aMethod } from '../../policy/gates/a2a-methods.js';
import type { A2aFacts } from '../../policy/gates/operation.js';
import type { EgressRules } from '../proxy/egress-rules.js';
import type { Resolver } from '../proxy/resolver.js';
import { checkPushUrl } from './push.js';
import { a2aOwner, admit, filterTaskList, ownerCheck, scanAnswer, type TaskOwners } from './tasks.js';

/** What the hooks read of a governed call (handler.ts A2aGovernedCall has these members). */
export interface IsolationCall {
  req: { headers: IncomingHttpHeaders };
  source: { name: string };
  op: { method: string; a2a: A2aFacts };
  shape: { binding: 'jsonrpc' | 'rest'; version: '1.0' | '0.3' };
  row: { stream: boolean };
  /** The live configuration: egress lists for push URLs, the bound on an answer read to edit it. */
  snap: { egress: EgressRules; maxFilteredResponseBytes: number };
}

/** handler.ts A2aHookRefusal. */
export type IsolationRefusal =
  | { kind: 'thoughtgate'; name: 'PUSH_URL_NOT_ALLOWED' | 'OVERLOADED' | 'RATE_LIMITED'; reason: string; rule?: string }
  /** `sse`: answer as one SSE `event: error` (0.3 JSON-RPC stream methods: tasks.ts taskNotFoundAnswer). */
  | { kind: 'a2a'; name: 'TASK_NOT_FOUND'; reason: string; message: string; sse: boolean };

export interface IsolationDeps {
  /** One table per sidecar (it outlives configuration reloads). */
  tasks: TaskOwners;
  /** The forward proxy's resolver and this host's addresses (sidecar.ts routeEnv). */
  resolver: Resolver;
  own: () => ReadonlySet<string>;
  /** Counts a refused push URL (push.ts pushUrlRefusals). */
  pushRefused?: (source: string) => void;
}

const SENDS = new Set<string>(['SendMessage', 'SendStreamingMessage'] satisfies A2aMethod[]);

export interface IsolationHooks {
  beforeForward(call: IsolationCall): Promise<IsolationRefusal | null>;
  readsAnswer(call: IsolationCall): boolean;
  onAnswer(call: IsolationCall, status: number, headers: Record<string, string | string[] | undefined>): Transform | null;
}

export function a2aIsolationHooks(d: IsolationDeps): IsolationHooks {
  return {
    async beforeForward(call) {
      const source = call.source.name;
      const owner = a2aOwner(source, call.req.headers);
      const foreign = ownerCheck(d.tasks, source, owner, call.op.a2a);
      if (foreign)
        return {
          kind: 'a2a',
          name: 'TASK_NOT_FOUND',
          reason: `${foreign.id} is not a task of this client`,
          message: foreign.message,
          sse: call.shape.binding === 'jsonrpc' && call.shape.version === '0.3' && call.row.stream,
        };
      if (call.op.a2a.pushUrl !== '') {
        const v = await checkPushUrl({ egress: call.snap.egress, resolver: d.resolver, own: d.own }, call.op.a2a.pushUrl);
        if (!v.ok) {
          d.pushRefused?.(source);
          return { kind: 'thoughtgate', name: 'PUSH_URL_NOT_ALLOWED', reason: v.reason };
        }
      }
      // Last: a Send refused for its push URL takes no token of the client's rate.
      if (SENDS.has(call.op.method)) {
        const no = admit(d.tasks, source, owner, call.op.a2a);
        if (no?.reason === 'rate') return { kind: 'thoughtgate', name: 'RATE_LIMITED', reason: no.message, rule: 'a2a.tasks.rate' };
        if (no) return { kind: 'thoughtgate', name: 'OVERLOADED', reason: no.message };
      }
      return null;
    },
    readsAnswer: (call) => SENDS.has(call.op.method) || call.op.method === 'ListTasks',
    onAnswer(call, _status, headers) {
      const source = call.source.name;
      const owner = a2aOwner(source, call.req.headers);
      const binding = call.shape.binding;
      const max = call.snap.maxFilteredResponseBytes;
      if (call.op.method === 'ListTasks') return listFilter(binding, max, (answer) => filterTaskList(d.tasks, source, owner, binding, answer));
      if (!SENDS.has(call.op.method)) return null;
      const type = String(headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      return scanAnswer(d.tasks, source, owner, { binding, sse: type === 'text/event-stream', maxEventBytes: max });
    },
  };
}

/** Reads a ListTasks answer whole (bounded: a list is the one answer that must be edited), writes it filtered. */
function listFilter(binding: 'jsonrpc' | 'rest', max: number, filter: (answer: unknown) => unknown): Transform {
  const parts: Buffer[] = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      size += chunk.length;
      if (size > max) return done(new Error(`the agent's ListTasks answer is larger than ${max} bytes`));
      parts.push(chunk);
      done();
    },
    flush(done: TransformCallback) {
      let answer: unknown;
      try {
        answer = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return done(new Error(`the agent's ListTasks answer (${binding}) is not JSON; it is not passed unfiltered`));
      }
      done(null, Buffer.from(JSON.stringify(filter(answer))));
    },
  });
}
