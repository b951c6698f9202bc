// Gate 4 plugged into the proxy: the ApprovalInterceptor (proxy/gate4.ts) over one ApprovalRuntime.
// The proxy's planner reads the lookups; its executor hands over the requests gate 4 answers.
import type { ApprovalInterceptor } from '../proxy/context.js';
import { findHeld, handleApprovalCall, handleOwnTask, handleTaskMethod, handleTasksList, isOwnTaskCall } from './http.js';
import { rememberToolSupport, sessionKey, type ApprovalRuntime } from './runtime.js';
import { upstreamTaskSupport } from './tasks.js';

export function approvalInterceptor(rt: ApprovalRuntime): ApprovalInterceptor {
  return {
    heldCall: (source, headers, params) => findHeld(rt, source, headers, params),
    ownsTaskCall: (source, m, mayNeedApproval) => isOwnTaskCall(rt, source, m, mayNeedApproval),
    toolSupportSeen: (source, tool, support) => rememberToolSupport(rt, source, tool, support),
    initializeSeen: (source, session, result) => rt.upstreamTasks.set(sessionKey(source, session), upstreamTaskSupport(result)),
    cancelHeld: (taskId) => void rt.engine.cancel(taskId, null, 'notifications/cancelled from the client'),
    takeover(t, r) {
      switch (t.kind) {
        case 'task-method':
          return handleTaskMethod(rt, r, t.message);
        case 'own-task':
          return handleOwnTask(rt, r, t.message, t.op);
        case 'tasks-list':
          return handleTasksList(rt, r, t.message);
        case 'approval':
          return handleApprovalCall(rt, r, t.message, t.op, t.decision);
      }
    },
  };
}
