// An ApprovalChannel's name → a working Slack client: its bot token from a Secret in the channel's
// namespace, one shared connection and rate limiter per token. Both approval controllers use it
// (one instance per leadership term, closed at step-down; what each token has spent of Slack's
// rate budget is kept for the process in `rateMemories`, so a new term does not start with full
// buckets while the calls of the last minute still count at Slack).
//
// Secrets are read with `get` (no list/watch of Secrets cluster-wide), cached briefly; a change
// of a Secret is noticed by re-reading it every secretPollMs for each channel.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { DEFAULT_SLACK_API_URL } from '../api/approval.js';
import { APPROVAL_REASONS } from '../api/approval-request.js';
import { ApprovalChannelSpecSchema, type ApprovalChannelSpec } from '../api/crds.js';
import type { Logger } from '../lib/log.js';
import { normalizeApiUrl, SlackApprovalClient, SlackApprovalError, SlackConnectionPool, type RateLimitMemories, type SlackConnection } from '../slack/index.js';
import type { KubeObject } from './kube-object.js';
import type { SlackApp } from './slack-socket.js';

export const DEFAULT_SLACK_API_URLS: readonly string[] = [DEFAULT_SLACK_API_URL, 'https://slack-gov.com/api/'];

export interface ChannelTarget {
  channel: KubeObject;
  spec: ApprovalChannelSpec;
  /** sha256 of API URL + token: the connection (limiter, poller) key; never the token itself. */
  connKey: string;
  connection: SlackConnection;
  client: SlackApprovalClient;
  /** The Slack app whose Socket Mode receiver gets this channel's button clicks (spec.slack.appTokenKey); absent: reactions. */
  app?: SlackApp;
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
  /** Each token's spent rate budget, kept beyond this instance (the operator's process). */
  rateMemories?: RateLimitMemories;
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
  private closed = false;

  constructor(private readonly o: SlackChannelsOptions) {
    this.core = o.kc.makeApiClient(k8s.CoreV1Api);
    this.allowed = o.allowedApiUrls ?? DEFAULT_SLACK_API_URLS;
    this.pool = new SlackConnectionPool(
      {
        requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
        log: (level, message) => o.log[level === 'debug' ? 'debug' : level === 'info' ? 'info' : 'warn']('slack client', { message }),
      },
      o.rateMemories,
    );
  }

  /** The bot token in a Secret, or why there is none. Throws on API errors other than 404 (retry). */
  async token(namespace: string, ref: { name: string; key: string }, fresh = false, field = 'spec.slack.tokenSecretRef.key'): Promise<SecretRead> {
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
    if (b64 === undefined) return { missing: `Secret "${ref.name}" in namespace ${namespace} has no key "${ref.key}" (${field})` };
    const token = Buffer.from(b64, 'base64').toString('utf8').trim();
    if (!token) return { missing: `Secret "${ref.name}" in namespace ${namespace}: key "${ref.key}" is empty` };
    return { token };
  }

  /** The Slack client of a channel, or the problem a person must fix. Throws on transient API errors. */
  async resolve(namespace: string, name: string, fresh = false): Promise<Resolved> {
    // A reconcile still running when its term ended gets no client (and so starts no Slack call).
    if (this.closed) throw new SlackApprovalError('permanent', 'closed', 'connect', 'Slack: the Slack clients of this leadership term were closed');
    const channel = this.o.channel(namespace, name);
    if (!channel || channel.metadata.deletionTimestamp) {
      return {
        ok: false,
        where: 'channel',
        reason: APPROVAL_REASONS.channelNotFound,
        message: `ApprovalChannel "${name}" does not exist in namespace ${namespace}`,
      };
    }
    const parsed = ApprovalChannelSpecSchema.safeParse(channel.spec);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ');
      return { ok: false, where: 'channel', reason: APPROVAL_REASONS.channelInvalid, message: `ApprovalChannel "${name}" is not valid: ${why}` };
    }
    const spec = parsed.data;
    if (!apiUrlAllowed(spec.slack.apiUrl, this.allowed)) {
      return {
        ok: false,
        where: 'token',
        reason: APPROVAL_REASONS.apiUrlNotAllowed,
        message: `ApprovalChannel "${name}": spec.slack.apiUrl ${spec.slack.apiUrl} is not one the operator may call (allowed: ${this.allowed.join(', ')}; see the operator's Slack API URL setting)`,
      };
    }
    const t = await this.token(namespace, spec.slack.tokenSecretRef, fresh);
    if ('missing' in t) return { ok: false, where: 'token', reason: APPROVAL_REASONS.secretNotFound, message: `ApprovalChannel "${name}": ${t.missing}` };
    const connKey = sha(`${normalizeApiUrl(spec.slack.apiUrl)} ${t.token}`);
    let app: SlackApp | undefined;
    if (spec.slack.appTokenKey !== undefined) {
      // The app-level token (buttons over Socket Mode) is another key of the same Secret.
      const a = await this.token(namespace, { name: spec.slack.tokenSecretRef.name, key: spec.slack.appTokenKey }, fresh, 'spec.slack.appTokenKey');
      if ('missing' in a) return { ok: false, where: 'token', reason: APPROVAL_REASONS.secretNotFound, message: `ApprovalChannel "${name}": ${a.missing}` };
      app = { key: sha(`${normalizeApiUrl(spec.slack.apiUrl)} ${a.token}`), appToken: a.token, apiUrl: spec.slack.apiUrl };
    }
    const cacheKey = `${namespace}/${name}`;
    // generation, not resourceVersion: status writes (the channel checks) must not rebuild clients.
    const version = `${channel.metadata.generation ?? 0}/${connKey}/${app?.key ?? ''}`;
    let c = this.clients.get(cacheKey);
    if (!c || c.version !== version) {
      const connection = this.pool.get(t.token, spec.slack.apiUrl);
      c = {
        version,
        connKey,
        client: new SlackApprovalClient(connection, {
          channel: spec.slack.channel,
          approvers: spec.approvers,
          reactions: spec.reactions,
          redact: spec.redact,
          ...(app ? { buttons: true } : {}),
        }),
      };
      this.clients.set(cacheKey, c);
    }
    return { ok: true, target: { channel, spec, connKey, connection: c.client.connection, client: c.client, ...(app ? { app } : {}) } };
  }

  forgetSecret(namespace: string, name: string): void {
    this.secrets.delete(`${namespace}/${name}`);
  }

  close(): void {
    this.closed = true;
    this.pool.close();
    this.clients.clear();
    this.secrets.clear();
  }
}
