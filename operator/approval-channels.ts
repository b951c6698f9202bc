// ApprovalChannels on the operator side: turning a channel name into a working Slack client (its
// bot token from a Secret in the channel's namespace, one shared connection and rate limiter per
// token), and the ApprovalChannel status reconciler (auth.test + conversations.info through the
// adapter's check(): conditions TokenValid, ChannelFound and Ready).
//
// Secrets are read with `get` (no list/watch of Secrets cluster-wide), cached briefly; a change
// of a Secret is noticed by re-reading it every secretPollMs for each channel.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { DEFAULT_SLACK_API_URL } from '../api/approval.js';
import { APPROVAL_REASONS } from '../api/approval-request.js';
import { ApprovalChannelSpecSchema, KINDS, type ApprovalChannelSpec } from '../api/crds.js';
import { setCondition, type Condition } from '../api/k8s.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import type { Logger } from '../lib/log.js';
import { normalizeApiUrl, SlackApprovalClient, SlackConnectionPool, type ChannelCheck, type SlackConnection } from '../slack/index.js';
import type { KubeObject } from './reconcile.js';

export const DEFAULT_SLACK_API_URLS: readonly string[] = [DEFAULT_SLACK_API_URL, 'https://slack-gov.com/api/'];

// ---------- channel resolution ----------

export interface ChannelTarget {
  channel: KubeObject;
  spec: ApprovalChannelSpec;
  /** sha256 of API URL + token: the connection (limiter, poller) key; never the token itself. */
  connKey: string;
  connection: SlackConnection;
  client: SlackApprovalClient;
}

export type Resolved =
  | { ok: true; target: ChannelTarget }
  /** A problem a person must fix (status, Failed requests); `where`: which condition it concerns. */
  | { ok: false; reason: string; message: string; where: 'channel' | 'token' };

export interface SlackChannelsOptions {
  kc: k8s.KubeConfig;
  log: Logger;
  /** The informer's ApprovalChannels. */
  channel: (namespace: string, name: string) => KubeObject | undefined;
  /** Slack API base URLs channels may use; '*' allows any. Default: Slack and GovSlack. */
  allowedApiUrls?: readonly string[];
  /** How long a read Secret is trusted. Default 30 s. */
  secretTtlMs?: number;
  /** Per Slack request. Default 15 s. */
  requestTimeoutMs?: number;
}

type SecretRead = { token: string } | { missing: string };
/** A Secret's data (base64 values), or null when it does not exist. */
type SecretData = Record<string, string> | null;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Pure: is `url` one of the allowed Slack API base URLs ('*' allows any)? */
export function apiUrlAllowed(url: string, allowed: readonly string[]): boolean {
  const u = normalizeApiUrl(url);
  return allowed.some((a) => a === '*' || normalizeApiUrl(a) === u);
}

export class SlackChannels {
  readonly pool: SlackConnectionPool;
  private readonly core: k8s.CoreV1Api;
  private readonly secrets = new Map<string, { at: number; data: SecretData }>();
  private readonly clients = new Map<string, { version: string; connKey: string; client: SlackApprovalClient }>();
  private readonly allowed: readonly string[];

  constructor(private readonly o: SlackChannelsOptions) {
    this.core = o.kc.makeApiClient(k8s.CoreV1Api);
    this.allowed = o.allowedApiUrls ?? DEFAULT_SLACK_API_URLS;
    this.pool = new SlackConnectionPool({
      requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
      log: (level, message) => o.log[level === 'debug' ? 'debug' : level === 'info' ? 'info' : 'warn']('slack client', { message }),
    });
  }

  /** The bot token in a Secret, or why there is none. Throws on API errors other than 404 (retry). */
  async token(namespace: string, ref: { name: string; key: string }, fresh = false): Promise<SecretRead> {
    const key = `${namespace}/${ref.name}`;
    const cached = this.secrets.get(key);
    let data: SecretData;
    if (!fresh && cached && Date.now() - cached.at < (this.o.secretTtlMs ?? 30_000)) {
      data = cached.data;
    } else {
      try {
        data = (await this.core.readNamespacedSecret({ name: ref.name, namespace })).data ?? {};
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
        data = null;
      }
      this.secrets.set(key, { at: Date.now(), data });
    }
    if (data === null) return { missing: `Secret "${ref.name}" (spec.slack.tokenSecretRef) does not exist in namespace ${namespace}` };
    const b64 = data[ref.key];
    if (b64 === undefined) return { missing: `Secret "${ref.name}" in namespace ${namespace} has no key "${ref.key}" (spec.slack.tokenSecretRef.key)` };
    const token = Buffer.from(b64, 'base64').toString('utf8').trim();
    if (!token) return { missing: `Secret "${ref.name}" in namespace ${namespace}: key "${ref.key}" is empty` };
    return { token };
  }

  /** The Slack client of a channel, or the problem a person must fix. Throws on transient API errors. */
  async resolve(namespace: string, name: string, fresh = false): Promise<Resolved> {
    const channel = this.o.channel(namespace, name);
    if (!channel || channel.metadata.deletionTimestamp) {
      return { ok: false, where: 'channel', reason: APPROVAL_REASONS.channelNotFound, message: `ApprovalChannel "${name}" does not exist in namespace ${namespace}` };
    }
    const parsed = ApprovalChannelSpecSchema.safeParse(channel.spec);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ');
      return { ok: false, where: 'channel', reason: APPROVAL_REASONS.channelInvalid, message: `ApprovalChannel "${name}" is not valid: ${why}` };
    }
    const spec = parsed.data;
    if (!apiUrlAllowed(spec.slack.apiUrl, this.allowed)) {
      return {
        ok: false, where: 'token', reason: APPROVAL_REASONS.apiUrlNotAllowed,
        message: `ApprovalChannel "${name}": spec.slack.apiUrl ${spec.slack.apiUrl} is not one the operator may call (allowed: ${this.allowed.join(', ')}; see the operator's Slack API URL setting)`,
      };
    }
    const t = await this.token(namespace, spec.slack.tokenSecretRef, fresh);
    if ('missing' in t) return { ok: false, where: 'token', reason: APPROVAL_REASONS.secretNotFound, message: `ApprovalChannel "${name}": ${t.missing}` };
    const connKey = sha(`${normalizeApiUrl(spec.slack.apiUrl)} ${t.token}`);
    const cacheKey = `${namespace}/${name}`;
    // generation, not resourceVersion: status writes (the channel checks) must not rebuild clients.
    const version = `${channel.metadata.generation ?? 0}/${connKey}`;
    let c = this.clients.get(cacheKey);
    if (!c || c.version !== version) {
      const connection = this.pool.get(t.token, spec.slack.apiUrl);
      c = {
        version,
        connKey,
        client: new SlackApprovalClient(connection, { channel: spec.slack.channel, approvers: spec.approvers, reactions: spec.reactions, redact: spec.redact }),
      };
      this.clients.set(cacheKey, c);
    }
    return { ok: true, target: { channel, spec, connKey, connection: c.client.connection, client: c.client } };
  }

  forgetSecret(namespace: string, name: string): void {
    this.secrets.delete(`${namespace}/${name}`);
  }

  close(): void {
    this.pool.close();
    this.clients.clear();
    this.secrets.clear();
  }
}

// ---------- ApprovalChannel status (pure) ----------

export interface ChannelStatus {
  observedGeneration: number;
  conditions: Condition[];
  team?: string;
  botUser?: string;
  channelName?: string;
}

/** What a check found: the adapter's ChannelCheck, or a problem before Slack could be asked. */
export type CheckResult = { check: ChannelCheck } | { problem: { reason: string; message: string; where: 'channel' | 'token' } };

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
  const c = r.check;
  if (c.team) out.team = c.team;
  if (c.botUserId) out.botUser = c.botUserId;
  if (c.channelName) out.channelName = c.channelName;
  const unreachable = c.retryable === true;
  if (c.tokenOk) set('TokenValid', 'True', 'TokenValid', `the bot token works${c.team ? ` (workspace ${c.team}, bot user ${c.botUserId})` : ''}`);
  else if (unreachable) set('TokenValid', 'Unknown', 'SlackUnreachable', c.error ?? 'Slack could not be reached');
  else set('TokenValid', 'False', 'TokenRefused', c.error ?? 'Slack refused the bot token');

  if (c.channelOk) set('ChannelFound', 'True', 'ChannelFound', `the bot can see channel ${c.channelName ? `#${c.channelName}` : ''}`.trim());
  else if (!c.tokenOk) set('ChannelFound', 'Unknown', unreachable ? 'SlackUnreachable' : 'TokenNotValid', unreachable ? (c.error ?? 'Slack could not be reached') : 'not checked: the bot token is not valid');
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
  return { ...out, conditions };
}

function truncate(s: string): string {
  return s.length > 1024 ? `${s.slice(0, 1021)}...` : s;
}

// ---------- ApprovalChannel status (the shell) ----------

export interface ChannelCheckerOptions {
  kc: k8s.KubeConfig;
  log: Logger;
  slack: SlackChannels;
  event: (obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string) => Promise<void>;
  /** Enqueue a channel key ("ac:<ns>/<name>") after `delayMs`. */
  requeue: (key: string, delayMs: number) => void;
  /** Full Slack check at least this often. Default 5 min. */
  checkIntervalMs?: number;
  /** Re-read the token Secret this often (a changed token is checked at once). Default 60 s. */
  secretPollMs?: number;
  now?: () => Date;
}

export class ChannelChecker {
  private readonly custom: k8s.CustomObjectsApi;
  /** What the last check covered (generation, token hash, API URL) and when it ran. */
  private readonly last = new Map<string, { fingerprint: string; at: number; unsure: boolean }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly o: ChannelCheckerOptions) {
    this.custom = o.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /** One channel: check it if anything it depends on changed or the last check is old, write status. */
  async reconcile(namespace: string, name: string, obj: KubeObject | undefined): Promise<void> {
    const key = `${namespace}/${name}`;
    if (!obj) {
      this.forget(key);
      return;
    }
    const now = this.o.now?.() ?? new Date();
    const generation = obj.metadata.generation ?? 0;
    let result: CheckResult;
    let fingerprint: string;
    const r = await this.o.slack.resolve(namespace, name, true);
    if (!r.ok) {
      result = { problem: r };
      fingerprint = `${generation} problem ${r.reason} ${r.message}`;
    } else {
      fingerprint = `${generation} ${r.target.connKey}`;
      const prev = this.last.get(key);
      const due = !prev || prev.fingerprint !== fingerprint || prev.unsure || now.getTime() - prev.at >= (this.o.checkIntervalMs ?? 300_000);
      if (!due && obj.status?.conditions?.some((c) => c.type === 'Ready')) {
        this.schedule(key);
        return;
      }
      result = { check: await r.target.client.check() };
    }
    // Stopped meanwhile (leadership lost): the Slack client was closed under the check.
    if (this.stopped) return;
    const unsure = 'check' in result && result.check.retryable === true;
    this.last.set(key, { fingerprint, at: now.getTime(), unsure });
    const status = channelStatus(result, generation, obj.status?.conditions, now);
    const prevStatus = obj.status as (ChannelStatus & Record<string, unknown>) | undefined;
    if (stableJson(status) !== stableJson({ observedGeneration: prevStatus?.observedGeneration, conditions: prevStatus?.conditions, ...pick(prevStatus) })) {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace, plural: KINDS.ApprovalChannel.plural, name, body: { status: { team: null, botUser: null, channelName: null, ...status } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ).catch((err) => { if ((err as { code?: number }).code !== 404) throw err; });
      const was = obj.status?.conditions?.find((c) => c.type === 'Ready');
      const ready = status.conditions.find((c) => c.type === 'Ready')!;
      if (was?.status !== ready.status || was.reason !== ready.reason) {
        await this.o.event(obj, ready.status === 'False' ? 'Warning' : 'Normal', ready.status === 'True' ? 'ChannelReady' : ready.reason, ready.message);
        this.o.log[ready.status === 'True' ? 'info' : 'warn']('approval channel checked', { channel: key, ready: ready.status, reason: ready.reason, message: ready.message });
      }
    }
    this.schedule(key, unsure ? Math.min(30_000, this.o.secretPollMs ?? 60_000) : undefined);
  }

  private schedule(key: string, ms = this.o.secretPollMs ?? 60_000): void {
    if (this.stopped) return;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.o.requeue(`ac:${key}`, 0);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
  }

  forget(key: string): void {
    this.last.delete(key);
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

/** JSON with object keys sorted: the API server returns stored objects with sorted keys. */
export function stableJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sort(v)) ?? 'undefined';
}

function pick(s: (ChannelStatus & Record<string, unknown>) | undefined): Partial<ChannelStatus> {
  const out: Partial<ChannelStatus> = {};
  if (typeof s?.team === 'string') out.team = s.team;
  if (typeof s?.botUser === 'string') out.botUser = s.botUser;
  if (typeof s?.channelName === 'string') out.channelName = s.channelName;
  return out;
}
