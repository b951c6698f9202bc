// One approval task's life as a pure transition: (task, event) → (task, effects). The engine
// (engine.ts) is the runner: it keeps the tasks and their indexes, feeds each event in, applies the
// new task and carries out the effects (backend writes, the executor, timers, metrics, logs), whose
// results come back as events. Nothing here does I/O, reads a clock or keeps state.
//
// submitting ─submitted→ pending ─decided(approved)→ executing ─(marked)→ run ─executed→ done
//      └───────────── submit-failed / decided(other) / deadline / cancel / ttl ─────────→ done
// A task without approval (ThoughtGate answers a task-augmented call itself) starts executing.
import { ERRORS, type ErrorName } from '../../api/errors.js';
import type { Decision, PendingApproval } from './backend.js';
import { callHash, type A2aTarget } from './hash.js';
import { decisionError, decisionMessage, executionStatus, type CallOutcome, type Owner, type Phase, type TaskState } from './tasks.js';

export interface ApprovalTask extends TaskState {
  readonly mode: 'task' | 'held';
  readonly owner: Owner;
  /** Absent for tasks that need no approval (a task-augmented call that was simply forwarded). */
  readonly pending?: PendingApproval;
  readonly correlationId: string;
  readonly rule?: string;
  phase: Phase;
  decision?: Decision;
  outcome?: CallOutcome;
  terminalAt?: number;
}

/**
 * The call as it runs: the engine's own, hash-checked copy. An A2A call (protocol a2a) keeps its
 * canonical method, the skill (or "") as `tool` and its parsed params as `arguments`.
 */
export interface ApprovedCall {
  protocol?: 'a2a';
  method?: string;
  /** With protocol a2a: the tenant, version and binding the hash binds (hash.ts). */
  target?: A2aTarget;
  tool: string;
  arguments: Record<string, unknown>;
}

export type TaskEvent =
  /** Created: with approval it is submitted, without it runs at once. `deadlineMs`: when the engine stops waiting for the backend. */
  | { type: 'start'; deadlineMs: number }
  | { type: 'submitted' }
  | { type: 'submit-failed'; error: string }
  | { type: 'decided'; decision: Decision }
  /** The approval's expiry plus grace passed without a decision from the backend. */
  | { type: 'deadline' }
  /** backend.markExecuting resolved: the call may run (at most once). */
  | { type: 'marked' }
  | { type: 'mark-failed'; error: string }
  | { type: 'executed'; outcome: CallOutcome }
  | { type: 'cancel'; why: string }
  /** The task's ttl passed. */
  | { type: 'ttl' }
  /** Adopted after a restart, found already executing: it may or may not have run. */
  | { type: 'interrupted' };

export type TaskEffect =
  | { type: 'pending'; delta: 1 | -1 }
  | { type: 'arm-deadline'; inMs: number }
  | { type: 'clear-deadline' }
  | { type: 'submit' }
  | { type: 'mark-executing' }
  | { type: 'execute' }
  | { type: 'abort' }
  /** Backend writes after the client's answer is settled: the runner retries them (docs/approvals.md). */
  | { type: 'backend-cancel' }
  | { type: 'backend-finished'; ok: boolean; summary: string }
  /** approvals_total{outcome}. */
  | { type: 'count'; outcome: string }
  | { type: 'waited'; seconds: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> }
  /** Terminal: the runner bounds the kept result, wakes waiters, drops a held call or schedules the task's clean-up. */
  | { type: 'ended' };

export interface StepContext {
  now: number;
  /** The backend, for messages ("ApprovalRequests in team-a (pod agent-0)"). */
  backend: string;
  /** Where a channel's humans decide (backend.channelDescription, else the backend). */
  where: (channel: string) => string;
  /** The engine's own copy of the call: what runs, checked against the approved hash. */
  call: ApprovedCall;
}

export interface Step {
  task: ApprovalTask;
  effects: TaskEffect[];
}

export function waitingMessage(where: string, channel: string, expiresAt: number, posted: boolean): string {
  return `${posted ? 'Waiting for' : 'Requesting'} human approval through approval channel "${channel}" (${where}); expires ${new Date(expiresAt).toISOString()}`;
}

/** The JSON-RPC error a task ends with, with its gate, rule, reason and ids in data. */
export function errorOutcome(t: Pick<ApprovalTask, 'mode' | 'id' | 'rule' | 'correlationId'>, name: ErrorName, reason: string): CallOutcome {
  const e = ERRORS[name];
  const data: Record<string, unknown> = { gate: e.gate, ...(t.rule !== undefined ? { rule: t.rule } : {}), reason, correlationId: t.correlationId };
  if (t.mode === 'task') data['taskId'] = t.id;
  return { kind: 'error', error: { code: e.code, message: e.message, data } };
}

export function isWaiting(t: Pick<ApprovalTask, 'phase'>): boolean {
  return t.phase === 'submitting' || t.phase === 'pending';
}

export function step(task: ApprovalTask, ev: TaskEvent, c: StepContext): Step {
  const t: ApprovalTask = { ...task };
  const fx: TaskEffect[] = [];
  apply(t, ev, c, fx);
  return { task: t, effects: fx };
}

function touch(t: ApprovalTask, now: number, message: string): void {
  t.statusMessage = message;
  t.lastUpdatedAt = Math.max(t.lastUpdatedAt, now);
}

function end(t: ApprovalTask, c: StepContext, fx: TaskEffect[], status: ApprovalTask['status'], outcome: CallOutcome, message: string): void {
  if (isWaiting(t)) fx.push({ type: 'pending', delta: -1 });
  fx.push({ type: 'clear-deadline' });
  t.phase = 'done';
  t.status = status;
  t.outcome = outcome;
  t.terminalAt = c.now;
  touch(t, c.now, message);
  fx.push({ type: 'ended' });
}

/** A decision for a task: ends it unless approved; an approved task runs exactly what was submitted, or nothing. */
function onDecided(t: ApprovalTask, d: Extract<TaskEvent, { type: 'decided' }>['decision'], c: StepContext, fx: TaskEffect[]): void {
  const p = t.pending;
  if (!isWaiting(t)) {
    // Decided after the call already ended here (cancelled, or timed out locally): make sure
    // the human's record does not suggest it ran.
    if (d.outcome === 'approved' && t.phase === 'done' && p && t.decision?.outcome !== 'approved')
      fx.push({ type: 'backend-finished', ok: false, summary: `Not executed: ${t.statusMessage}` });
    return;
  }
  fx.push({ type: 'clear-deadline' });
  t.decision = d;
  fx.push({ type: 'count', outcome: d.outcome }, { type: 'waited', seconds: Math.max(0, c.now - t.createdAt) / 1000 });
  fx.push({
    type: 'log',
    level: 'info',
    msg: 'approval decided',
    fields: { id: t.id, outcome: d.outcome, by: d.by?.map((b) => b.id), correlationId: t.correlationId },
  });
  if (d.outcome !== 'approved') {
    const { name, status } = decisionError(d.outcome, d.message);
    end(t, c, fx, status, errorOutcome(t, name, d.message || decisionMessage(d)), decisionMessage(d));
    return;
  }
  fx.push({ type: 'pending', delta: -1 });
  t.phase = 'executing';
  touch(t, c.now, decisionMessage(d));
  // Exactly what was submitted, or nothing.
  if (p && (callHash(t.owner.source, c.call) !== p.requestHash || c.call.tool !== p.tool)) {
    fx.push({ type: 'log', level: 'error', msg: 'approved request does not match its hash; not executed', fields: { id: t.id } });
    end(
      t,
      c,
      fx,
      'failed',
      errorOutcome(
        t,
        'APPROVAL_UNAVAILABLE',
        'the approved request does not match the request that was submitted for approval (hash mismatch); it was not executed',
      ),
      'Not executed: the request does not match what was approved',
    );
    fx.push({ type: 'backend-finished', ok: false, summary: 'Not executed: the request did not match its hash' });
    return;
  }
  fx.push({ type: p ? 'mark-executing' : 'execute' });
}

function apply(t: ApprovalTask, ev: TaskEvent, c: StepContext, fx: TaskEffect[]): void {
  const p = t.pending;
  switch (ev.type) {
    case 'start':
      if (!p) {
        fx.push({ type: 'execute' });
        return;
      }
      fx.push({ type: 'pending', delta: 1 }, { type: 'arm-deadline', inMs: ev.deadlineMs });
      fx.push({
        type: 'log',
        level: 'info',
        msg: 'approval requested',
        fields: {
          id: t.id,
          mode: t.mode,
          source: p.source,
          tool: p.tool,
          channel: p.channel,
          rule: t.rule,
          expiresAt: p.expiresAt.toISOString(),
          correlationId: t.correlationId,
        },
      });
      fx.push({ type: 'submit' });
      return;

    case 'submitted':
      // Cancelled while the submit was in flight: the cancel found nothing to cancel then (404),
      // so the request just recorded would ask a human about a call that is gone. Cancel it now.
      if (t.phase === 'done' && p && t.status === 'cancelled' && t.decision === undefined) {
        fx.push({ type: 'backend-cancel' });
        return;
      }
      if (t.phase !== 'submitting' || !p) return;
      t.phase = 'pending';
      touch(t, c.now, waitingMessage(c.where(p.channel), p.channel, p.expiresAt.getTime(), true));
      return;

    case 'submit-failed':
      if (t.phase !== 'submitting' || !p) return;
      fx.push({ type: 'log', level: 'warn', msg: 'approval submit failed', fields: { id: t.id, channel: p.channel, error: ev.error } });
      fx.push({ type: 'count', outcome: 'unavailable' });
      end(
        t,
        c,
        fx,
        'failed',
        errorOutcome(t, 'APPROVAL_UNAVAILABLE', `the approval request could not be recorded (${c.backend}): ${ev.error}; the call was not forwarded`),
        `Approval unavailable; not executed: ${ev.error}`,
      );
      return;

    case 'decided':
      onDecided(t, ev.decision, c, fx);
      return;

    case 'deadline':
      if (!isWaiting(t)) return;
      fx.push({ type: 'log', level: 'warn', msg: 'approval deadline passed without a decision from the backend', fields: { id: t.id, backend: c.backend } });
      fx.push({ type: 'backend-cancel' });
      apply(
        t,
        { type: 'decided', decision: { id: t.id, outcome: 'expired', at: new Date(c.now), message: `no decision arrived from ${c.backend} by the deadline` } },
        c,
        fx,
      );
      return;

    case 'marked':
      // Cancelled while the start was being recorded: nothing ran.
      if (t.phase === 'done') fx.push({ type: 'backend-finished', ok: false, summary: `Not executed: ${t.statusMessage}` });
      else fx.push({ type: 'execute' });
      return;

    case 'mark-failed':
      if (t.phase === 'done') return;
      end(
        t,
        c,
        fx,
        'failed',
        errorOutcome(
          t,
          'APPROVAL_UNAVAILABLE',
          `approved, but the start of execution could not be recorded (${ev.error}); not executed, so that it can never run twice`,
        ),
        `Approved but not executed: ${ev.error}`,
      );
      fx.push({ type: 'backend-finished', ok: false, summary: `Not executed: ${ev.error}` });
      return;

    case 'executed': {
      if (t.phase === 'done') {
        // Cancelled (or past its ttl) while it ran: the task stays ended (spec), the human's record says so.
        if (p)
          fx.push({
            type: 'backend-finished',
            ok: false,
            summary:
              t.status === 'cancelled'
                ? 'Cancelled by the client while executing; the upstream request was aborted'
                : `${t.statusMessage}; the upstream request was aborted`,
          });
        return;
      }
      const result = executionStatus(ev.outcome);
      const by = t.decision ? decisionMessage(t.decision).replace(/; executing$/, '') : 'Executed';
      end(t, c, fx, result.status, ev.outcome, p ? `${by}. ${result.summary}` : result.summary);
      if (p) fx.push({ type: 'backend-finished', ok: result.ok, summary: result.summary });
      return;
    }

    case 'cancel': {
      if (t.phase === 'done') return;
      const waiting = isWaiting(t);
      fx.push({ type: 'log', level: 'info', msg: 'approval cancelled by the client', fields: { id: t.id, phase: t.phase, why: ev.why } });
      if (!waiting) fx.push({ type: 'abort' });
      fx.push({ type: 'count', outcome: 'cancelled' });
      end(
        t,
        c,
        fx,
        'cancelled',
        errorOutcome(
          t,
          'APPROVAL_CANCELLED',
          `the call was cancelled by the client (${ev.why})${waiting ? ' before a decision; it was not executed' : ' while executing; the upstream request was aborted'}`,
        ),
        `Cancelled by the client (${ev.why})`,
      );
      // While executing, the 'executed' event tells the backend how it ended.
      if (waiting && p) fx.push({ type: 'backend-cancel' });
      return;
    }

    case 'ttl':
      if (t.phase === 'done') return;
      // Not reached while waiting in practice: the ttl outlives the approval deadline.
      if (isWaiting(t)) return apply(t, { type: 'cancel', why: "the task's ttl passed" }, c, fx);
      fx.push({ type: 'log', level: 'warn', msg: 'task still running at its ttl; aborted', fields: { id: t.id } }, { type: 'abort' });
      end(
        t,
        c,
        fx,
        'failed',
        errorOutcome(t, 'UPSTREAM_UNAVAILABLE', `the call had not finished when the task's ttl (${t.ttlMs} ms) passed; the upstream request was aborted`),
        "Not finished within the task's ttl",
      );
      return;

    case 'interrupted':
      if (t.phase === 'done') return;
      end(
        t,
        c,
        fx,
        'failed',
        errorOutcome(
          t,
          'APPROVAL_UNAVAILABLE',
          'the sidecar restarted while this approved call was executing; it may or may not have run and is not run again',
        ),
        'Interrupted by a sidecar restart while executing; not run again',
      );
      return;
  }
}
