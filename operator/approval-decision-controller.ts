// The ApprovalDecision controller (leader only): counts a person's Approve or Reject made with
// kubectl into its ApprovalRequest's status, like a Slack decision (approval-decision-plan.ts
// decides; this reads and writes). The vote is written into the request first, conditional on the
// resourceVersion read (a 409 re-reads and plans again), then the decision is marked Counted; a
// crash in between is repaired by the next reconcile, which finds the vote by its ref. The
// ApprovalRequest controller then rewrites the Slack message and the sidecar acts on the decision.
import * as k8s from '@kubernetes/client-node';
import { ApprovalChannelSpecSchema, ApprovalDecisionSpecSchema, ApprovalRequestSpecSchema, KINDS } from '../api/crds.js';
import {
  DECISION_POLICY_NAME,
  DECISION_PROBE_USERNAME,
  decisionProbeObject,
  refusedByDecisionPolicy,
  type ApprovalDecisionStatus,
} from '../api/approval-decision.js';
import type { ApprovalRequestStatus } from '../api/approval-request.js';
import { API_VERSION, GROUP, VERSION } from '../api/wellknown.js';
import { describeError } from '../lib/describe-error.js';
import type { Span } from '../lib/tracing.js';
import { planDecision, policyState, type DecisionPlan, type PolicyState } from './approval-decision-plan.js';
import { objectId, objectKey, type ObjectKey } from './keys.js';
import type { KubeObject } from './kube-object.js';
import { mergePatch, statusCode, truncate } from './kube-writes.js';
import { watch, type ControllerContext, type ControllerDefinition, type Reconciler } from './manager.js';
import type { SlackChannels } from './slack-channels.js';
import { slackApprovers } from './slack-votes.js';
import { APPROVAL_CHANNELS, APPROVAL_DECISIONS, type Source } from './sources.js';

/** Write conflicts on the ApprovalRequest in one reconcile before it is left to the queue's backoff. */
const CONFLICT_ATTEMPTS = 5;

/**
 * `slack`: the term's shared Slack clients, to read the channel's user groups when a Slack vote
 * recorded on the request counts only through one (without them, or when Slack cannot be asked,
 * such a vote's approval does not count now).
 */
export function approvalDecisionController(slack?: (ctx: ControllerContext<ObjectKey>) => SlackChannels): ControllerDefinition<ObjectKey> {
  return { kind: 'adec', id: objectId, concurrency: 4, setup: (ctx) => new ApprovalDecisionController(ctx, slack?.(ctx)) };
}

type Decision = KubeObject & { spec?: unknown; status?: ApprovalDecisionStatus };
type Request = KubeObject & { spec?: unknown; status?: ApprovalRequestStatus };

class ApprovalDecisionController implements Reconciler<ObjectKey> {
  readonly watches = [watch(APPROVAL_DECISIONS, (e, obj) => (e === 'delete' ? [] : [objectKey(obj)]))];
  readonly reads = [APPROVAL_CHANNELS as unknown as Source<k8s.KubernetesObject>];
  private readonly custom: k8s.CustomObjectsApi;
  private readonly admission: k8s.AdmissionregistrationV1Api;
  private stopped = false;

  constructor(
    private readonly ctx: ControllerContext<ObjectKey>,
    private readonly slack: SlackChannels | undefined,
  ) {
    this.custom = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
    this.admission = ctx.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  }

  async reconcile(k: ObjectKey, _span?: Span): Promise<void> {
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      if (this.stopped) return;
      const decision = this.ctx.cache(APPROVAL_DECISIONS).get(k.name, k.namespace) as Decision | undefined;
      if (!decision || decision.status?.phase) return;
      try {
        await this.step(decision);
        return;
      } catch (err) {
        // The request changed under us (another vote, Slack, the sidecar): read and plan again.
        if (statusCode(err) !== 409) throw err;
      }
    }
    // Still changing after that many reads (a burst of votes): not a verdict on the decision. Say
    // so and throw, so the queue tries again with backoff (and the reconcile error is counted).
    const decision = this.ctx.cache(APPROVAL_DECISIONS).get(k.name, k.namespace) as Decision | undefined;
    const message = `the ApprovalRequest changed ${CONFLICT_ATTEMPTS} times while this decision was being counted; trying again`;
    if (decision) await this.ctx.events.event({ ...decision, apiVersion: API_VERSION, kind: KINDS.ApprovalDecision.kind }, 'Warning', 'CountRetried', message);
    throw new Error(`approval decision ${objectId(k)}: ${message}`);
  }

  private async step(decision: Decision): Promise<void> {
    const ns = decision.metadata.namespace!;
    const parsed = ApprovalDecisionSpecSchema.safeParse(decision.spec);
    const spec = parsed.success ? parsed.data : null;
    const request = spec ? await this.getRequest(ns, spec.approvalRequest) : null;
    const requestSpec = request ? ApprovalRequestSpecSchema().safeParse(request.spec) : null;
    const channelName = requestSpec?.success ? requestSpec.data.channel : undefined;
    const channelObj = channelName ? this.ctx.cache(APPROVAL_CHANNELS).get(channelName, ns) : undefined;
    const channel = channelObj ? ApprovalChannelSpecSchema.safeParse(channelObj.spec) : null;
    const approvers = channel?.success ? channel.data.approvers : undefined;
    const slackApprover = await slackApprovers(approvers ?? { users: [], userGroups: [] }, request?.status?.votes ?? [], async () => {
      if (!this.slack || !channelName) throw new Error('no Slack clients');
      const r = await this.slack.resolve(ns, channelName);
      if (!r.ok) throw new Error(r.message);
      return r.target.connection.directory.allowlist(r.target.spec.approvers, true);
    });
    const plan = planDecision({
      decision: {
        name: decision.metadata.name,
        spec,
        specError: parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; '),
        status: decision.status ?? {},
        created: new Date(decision.metadata.creationTimestamp ?? 0),
      },
      policy: await this.policyState(ns),
      request: request ? { spec: requestSpec?.success ? requestSpec.data : null, status: request.status ?? {} } : null,
      channel: channel?.success ? channel.data : null,
      channelError: channelObj && channel && !channel.success ? `is not valid: ${channel.error.issues[0]?.message ?? 'invalid'}` : undefined,
      slackApprover,
      now: new Date(),
    });
    await this.act(decision, request, plan);
  }

  private async act(decision: Decision, request: Request | null, plan: DecisionPlan): Promise<void> {
    const id = objectId(objectKey(decision));
    switch (plan.do) {
      case 'nothing':
        return;
      case 'ignore':
        this.ctx.log[plan.warn ? 'warn' : 'info']('approval decision ignored', { decision: id, reason: plan.reason, message: plan.message });
        await this.markDecision(decision, { phase: 'Ignored', reason: plan.reason, message: truncate(plan.message) });
        // (apiVersion and kind spelled out: the Event's involvedObject needs them, whatever the cache kept.)
        await this.ctx.events.event(
          { ...decision, apiVersion: API_VERSION, kind: KINDS.ApprovalDecision.kind },
          plan.warn ? 'Warning' : 'Normal',
          plan.reason,
          truncate(plan.message),
        );
        return;
      case 'mark-counted':
        await this.markDecision(decision, {
          phase: 'Counted',
          reason: plan.reason,
          message: plan.message,
          requestPhase: request?.status?.phase,
          approvals: request?.status?.approvals,
        });
        return;
      case 'count': {
        const r = request!;
        const u = plan.request;
        const end = u.end
          ? { phase: u.end.phase, reason: u.end.reason, message: u.end.message, decidedBy: u.end.decidedBy, decidedAt: new Date().toISOString() }
          : {};
        // Conditional on what was planned from: a vote or decision written meanwhile is a 409.
        const fresh = (await this.custom.patchNamespacedCustomObjectStatus(
          {
            group: GROUP,
            version: VERSION,
            namespace: r.metadata.namespace!,
            plural: KINDS.ApprovalRequest.plural,
            name: r.metadata.name,
            body: { metadata: { resourceVersion: r.metadata.resourceVersion }, status: { votes: u.votes, approvals: u.approvals, ...end } },
          },
          mergePatch(),
        )) as Request;
        const who = (decision.spec as { user: { username: string } }).user.username;
        const verb = (decision.spec as { decision: string }).decision.toLowerCase();
        this.ctx.log.info('approval decision counted', {
          decision: id,
          request: objectId(objectKey(r)),
          user: who,
          vote: verb,
          approvals: u.approvals,
          phase: u.end?.phase,
        });
        await this.ctx.events.event(
          fresh,
          'Normal',
          u.end ? u.end.phase : 'Voted',
          u.end ? u.end.message : `${who} voted ${verb} with kubectl (approvals ${u.approvals})`,
        );
        await this.markDecision(decision, {
          phase: 'Counted',
          reason: 'Counted',
          message: plan.message,
          requestPhase: fresh.status?.phase,
          approvals: u.approvals,
        });
        return;
      }
      default:
        throw new Error(`unhandled plan ${JSON.stringify(plan as never)}`);
    }
  }

  private async markDecision(decision: Decision, status: ApprovalDecisionStatus): Promise<void> {
    await this.custom
      .patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace: decision.metadata.namespace!,
          plural: KINDS.ApprovalDecision.plural,
          name: decision.metadata.name,
          body: { status },
        },
        mergePatch(),
      )
      .catch((err) => {
        if (statusCode(err) !== 404) throw err;
      });
  }

  private async getRequest(namespace: string, name: string): Promise<Request | null> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: KINDS.ApprovalRequest.plural,
        name,
      })) as Request;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  /**
   * The identity policy and binding as the cluster has them now: read for every decision (they are
   * rare), so a removed policy counts at once. Only what was read decides (absent, or not as
   * shipped: the decision is Ignored); a failed read (403, 5xx, the network) throws, so the decision
   * waits for the queue's retry with backoff instead of being ignored for good.
   */
  private async policyState(namespace: string): Promise<PolicyState> {
    const state = await this.policyObjects();
    return state.ok ? ((await this.policyEnforced(namespace)) ?? state) : state;
  }

  /**
   * Whether the API server enforces the policy, not only has it: the objects can be there as
   * shipped while the ValidatingAdmissionPolicy admission plugin is off, and then a decision can
   * carry anyone's name. A dry-run create in a name nobody has (stored nowhere) must be refused by
   * the policy: then null (proven, for this decision); accepted, a verdict (the decision is
   * Ignored); any other answer throws, so the decision waits for the queue's retry. One dry run per
   * decision counted: decisions are rare, and a cached proof would outlive an API server restarted
   * with other flags.
   */
  private async policyEnforced(namespace: string): Promise<PolicyState | null> {
    try {
      await this.custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: KINDS.ApprovalDecision.plural,
        body: decisionProbeObject(namespace, 'operator'),
        dryRun: 'All',
      });
    } catch (err) {
      const code = statusCode(err);
      const body = (err as { body?: unknown }).body;
      if (code !== undefined && typeof body === 'string' && refusedByDecisionPolicy(code, body)) return null;
      let said = describeError(err);
      try {
        said = (JSON.parse(String(body)) as { message?: string }).message ?? said;
      } catch {
        // not a Status: keep the error's own words
      }
      throw new Error(
        `cannot prove the identity policy ${DECISION_POLICY_NAME} is enforced: a dry-run ApprovalDecision in ${namespace} was refused by something else (${code ?? 'no answer'}: ${truncate(said)})` +
          (code === 403 ? '; if the operator may not create approvaldecisions, its RBAC needs it (only ever as a dry run)' : '') +
          '; decisions wait and are tried again',
        { cause: err },
      );
    }
    return {
      ok: false,
      message: `the API server accepted a dry-run ApprovalDecision in the name ${DECISION_PROBE_USERNAME}: the identity policy ${DECISION_POLICY_NAME} is installed but not enforced (is the ValidatingAdmissionPolicy admission plugin disabled?), so who made a decision cannot be verified`,
    };
  }

  private async policyObjects(): Promise<PolicyState> {
    const read = async (f: () => Promise<unknown>): Promise<unknown | null> => {
      try {
        return await f();
      } catch (err) {
        if (statusCode(err) === 404) return null;
        throw err;
      }
    };
    try {
      const [policy, binding] = await Promise.all([
        read(() => this.admission.readValidatingAdmissionPolicy({ name: DECISION_POLICY_NAME })),
        read(() => this.admission.readValidatingAdmissionPolicyBinding({ name: DECISION_POLICY_NAME })),
      ]);
      return policyState(policy, binding);
    } catch (err) {
      const code = statusCode(err);
      throw new Error(
        code === 403
          ? `the operator may not read the ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} and its binding (its RBAC needs get on them); decisions wait until it may`
          : `cannot read the ValidatingAdmissionPolicy ${DECISION_POLICY_NAME} and its binding now (${code ?? describeError(err)}); will try again`,
        { cause: err },
      );
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
