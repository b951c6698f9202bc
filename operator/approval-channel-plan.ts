// The ApprovalChannel controller's decisions (pure). A channel is checked in Slack (auth.test and
// conversations.info through the adapter's check()) when what it depends on changed — generation,
// token, API URL — when the last check was unsure, or when it is old; the check becomes the
// conditions TokenValid, ChannelFound and Ready, written when they changed, with an Event when
// Ready changes. operator/approval-channel-controller.ts carries it out.
import { setCondition, type Condition } from '../api/k8s.js';
import type { ChannelCheck } from '../slack/index.js';
import type { EventType } from './events.js';
import { truncate } from './kube-writes.js';

export interface ChannelStatus {
  observedGeneration: number;
  conditions: Condition[];
  team?: string;
  botUser?: string;
  channelName?: string;
}

/** A problem found before Slack could be asked (a missing Secret, an invalid spec). */
export interface ChannelProblem {
  reason: string;
  message: string;
  where: 'channel' | 'token';
}

/** What a check found: the adapter's ChannelCheck, or a problem before Slack could be asked. */
export type CheckResult = { check: ChannelCheck } | { problem: ChannelProblem };

/** What the last check of a channel covered, and when it ran (kept in memory per term). */
export interface LastCheck {
  fingerprint: string;
  at: number;
  /** Slack could not be reached: check again at the next look. */
  unsure: boolean;
}

export interface CheckInput {
  generation: number;
  /** The channel resolved to a Slack connection (its key), or the problem that stops it. */
  resolved: { ok: true; connKey: string } | ({ ok: false } & ChannelProblem);
  last: LastCheck | undefined;
  now: number;
  checkIntervalMs: number;
  /** The channel's status has a Ready condition already. */
  hasReady: boolean;
}

export type CheckPlan =
  /** Nothing changed and the last check is recent: look again later. */
  | { do: 'skip' }
  | { do: 'check'; fingerprint: string }
  /** No Slack call: the problem is the result. */
  | { do: 'report'; fingerprint: string; result: CheckResult };

export function planCheck(i: CheckInput): CheckPlan {
  const r = i.resolved;
  if (!r.ok)
    return {
      do: 'report',
      fingerprint: `${i.generation} problem ${r.reason} ${r.message}`,
      result: { problem: { reason: r.reason, message: r.message, where: r.where } },
    };
  const fingerprint = `${i.generation} ${r.connKey}`;
  const prev = i.last;
  const due = !prev || prev.fingerprint !== fingerprint || prev.unsure || i.now - prev.at >= i.checkIntervalMs;
  return !due && i.hasReady ? { do: 'skip' } : { do: 'check', fingerprint };
}

/** The channel's status as stored (any fields). */
export type StoredChannelStatus = Partial<ChannelStatus> & Record<string, unknown>;

export interface StatusInput {
  result: CheckResult;
  generation: number;
  status: StoredChannelStatus | undefined;
  now: Date;
  secretPollMs: number;
}

export interface StatusPlan {
  unsure: boolean;
  /** The status merge patch, or null when nothing changed. */
  write: Record<string, unknown> | null;
  /** Ready changed: an Event (and a log line). */
  transition: { type: EventType; reason: string; message: string; ready: Condition['status'] } | null;
  /** Look again after this long (a changed Secret is noticed then). */
  requeueMs: number;
}

export function planChannelStatus(i: StatusInput): StatusPlan {
  const unsure = 'check' in i.result && i.result.check.retryable === true;
  const requeueMs = unsure ? Math.min(30_000, i.secretPollMs) : i.secretPollMs;
  const status = channelStatus(i.result, i.generation, i.status?.conditions, i.now);
  const prev = i.status;
  if (stableJson(status) === stableJson({ observedGeneration: prev?.observedGeneration, conditions: prev?.conditions, ...pick(prev) })) {
    return { unsure, write: null, transition: null, requeueMs };
  }
  // Fields the check no longer reports are cleared (null in a merge patch).
  const write = { team: null, botUser: null, channelName: null, ...status };
  const was = prev?.conditions?.find((c) => c.type === 'Ready');
  const ready = status.conditions.find((c) => c.type === 'Ready')!;
  const transition =
    was?.status !== ready.status || was.reason !== ready.reason
      ? {
          type: ready.status === 'False' ? ('Warning' as const) : ('Normal' as const),
          reason: ready.status === 'True' ? 'ChannelReady' : ready.reason,
          message: ready.message,
          ready: ready.status,
        }
      : null;
  return { unsure, write, transition, requeueMs };
}

/** Pure: the ApprovalChannel status for a check result. */
export function channelStatus(r: CheckResult, generation: number, prev: readonly Condition[] | undefined, now: Date): ChannelStatus {
  let conditions = [...(prev ?? [])];
  const set = (type: string, status: Condition['status'], reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message: truncate(message), observedGeneration: generation }, now);
  };
  const out: ChannelStatus = { observedGeneration: generation, conditions };
  if ('problem' in r) {
    const p = r.problem;
    if (p.where === 'token') {
      set('TokenValid', 'False', p.reason, p.message);
      set('ChannelFound', 'Unknown', 'TokenNotValid', 'not checked: the bot token is not usable');
    } else {
      set('TokenValid', 'Unknown', 'ChannelInvalid', 'not checked: the channel is not usable');
      set('ChannelFound', 'False', p.reason, p.message);
    }
    set('Ready', 'False', p.reason, p.message);
    return { ...out, conditions };
  }
  checkConditions(r.check, set);
  const c = r.check;
  if (c.team) out.team = c.team;
  if (c.botUserId) out.botUser = c.botUserId;
  if (c.channelName) out.channelName = c.channelName;
  return { ...out, conditions };
}

/** TokenValid, ChannelFound and Ready for a check that ran. */
function checkConditions(
  c: Extract<CheckResult, { check: unknown }>['check'],
  set: (type: string, status: Condition['status'], reason: string, message: string) => void,
): void {
  const unreachable = c.retryable === true;
  if (c.tokenOk) set('TokenValid', 'True', 'TokenValid', `the bot token works${c.team ? ` (workspace ${c.team}, bot user ${c.botUserId})` : ''}`);
  else if (unreachable) set('TokenValid', 'Unknown', 'SlackUnreachable', c.error ?? 'Slack could not be reached');
  else set('TokenValid', 'False', 'TokenRefused', c.error ?? 'Slack refused the bot token');

  if (c.channelOk) set('ChannelFound', 'True', 'ChannelFound', `the bot can see channel ${c.channelName ? `#${c.channelName}` : ''}`.trim());
  else if (!c.tokenOk)
    set(
      'ChannelFound',
      'Unknown',
      unreachable ? 'SlackUnreachable' : 'TokenNotValid',
      unreachable ? (c.error ?? 'Slack could not be reached') : 'not checked: the bot token is not valid',
    );
  else if (unreachable) set('ChannelFound', 'Unknown', 'SlackUnreachable', c.error ?? 'Slack could not be reached');
  else set('ChannelFound', 'False', 'ChannelNotFound', c.error ?? 'the channel was not found');

  if (c.tokenOk && c.channelOk && c.approversOk) {
    set('Ready', 'True', 'Ready', `approvals can be posted; ${c.approverCount ?? 0} approver${c.approverCount === 1 ? '' : 's'} after resolving user groups`);
  } else if (unreachable) {
    set('Ready', 'Unknown', 'SlackUnreachable', c.error ?? 'Slack could not be reached; will check again');
  } else if (c.tokenOk && c.channelOk) {
    set('Ready', 'False', 'ApproversUnresolved', c.error ?? 'the approvers could not be resolved');
  } else {
    set('Ready', 'False', c.tokenOk ? 'ChannelNotFound' : 'TokenRefused', c.error ?? 'the channel cannot be used');
  }
}

/** JSON with object keys sorted: the API server returns stored objects with sorted keys. */
export function stableJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.keys(x)
              .sort()
              .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
          )
        : x;
  return JSON.stringify(sort(v)) ?? 'undefined';
}

function pick(s: StoredChannelStatus | undefined): Partial<ChannelStatus> {
  const out: Partial<ChannelStatus> = {};
  if (typeof s?.team === 'string') out.team = s.team;
  if (typeof s?.botUser === 'string') out.botUser = s.botUser;
  if (typeof s?.channelName === 'string') out.channelName = s.channelName;
  return out;
}
