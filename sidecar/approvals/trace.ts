// The approval wait of a held call in its trace: a span from submission to the decision, with the
// decision as a child span (outcome, how many approvers; never who or the call's arguments). In a
// cluster the decision is the operator's: its reconcile span links to the requesting span
// (carried on the ApprovalRequest); here the sidecar records when and how it learned of it.
import type { Span, Tracer } from '../../lib/tracing.js';
import type { SpanRef } from '../../lib/trace-context.js';
import type { ApprovalTask } from './engine.js';

export interface ApprovalWaitTrace {
  /** The wait span's identity (what an ApprovalRequest carries), null when tracing is off. */
  readonly ref: SpanRef | null;
  /** The task's decision is known (or it ended without one): recorded once. */
  decided(task: ApprovalTask): void;
}

const NO_WAIT: ApprovalWaitTrace = { ref: null, decided() {} };

export function traceApprovalWait(tracer: Tracer, parent: Span, approval: { channel: string; rule?: string }): ApprovalWaitTrace {
  if (!tracer.on || parent.ref === null) return NO_WAIT;
  const wait = tracer.start('approval wait', {
    parent: parent.ref,
    attributes: { 'thoughtgate.gate': 'approval', 'thoughtgate.approval.channel': approval.channel, 'thoughtgate.rule': approval.rule },
  });
  let done = false;
  return {
    ref: wait.ref,
    decided(task) {
      if (done) return;
      done = true;
      const d = task.decision;
      wait.set({ 'thoughtgate.approval.task_id': task.id, 'thoughtgate.approval.outcome': d?.outcome ?? task.status });
      if (d?.tracedElsewhere) wait.set({ 'thoughtgate.approval.decided_in': 'operator' });
      else if (d) {
        const at = d.at.getTime();
        const decision = tracer.start('approval decision', {
          parent: wait.ref,
          startTime: at,
          attributes: { 'thoughtgate.approval.outcome': d.outcome, 'thoughtgate.approval.approvers': d.by?.length ?? 0 },
        });
        decision.end();
        if (decision.ref) wait.link(decision.ref, { 'thoughtgate.link': 'decision' });
      }
      wait.end();
    },
  };
}
