// One Slack bot token: its WebClient, its rate limiter, its approver caches and its identity.
// Everything that uses the same token must share one SlackConnection (SlackConnectionPool does
// that), because Slack's limits are per token, not per channel or per pod.
import { createHash } from 'node:crypto';
import { LogLevel, WebClient, type Logger } from '@slack/web-api';
import { DEFAULT_SLACK_API_URL } from '../api/approval.js';
import { ApproverDirectory, type ApproverDirectoryOptions } from './approvers.js';
import type { Clock } from '../lib/clock.js';
import { SlackApprovalError, classifySlackError } from './errors.js';
import { RateLimitMemories, SlackRateLimiter, type RateLimiterOptions, type RunOptions } from './rate-limiter.js';

export type SlackLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type SlackLog = (level: SlackLogLevel, message: string) => void;

export interface SlackConnectionOptions {
  token: string;
  /** Web API base URL; a missing trailing slash is added (WebClient builds `${url}${method}`). */
  apiUrl?: string;
  limiter?: RateLimiterOptions;
  directory?: ApproverDirectoryOptions;
  /** Per-request timeout; a hung connection becomes a retryable network error. */
  requestTimeoutMs?: number;
  clock?: Clock;
  /** Where WebClient's own warnings go (default: dropped; our callers log the classified errors). */
  log?: SlackLog;
}

export interface BotIdentity {
  userId: string;
  botId?: string;
  team?: string;
  teamId?: string;
}

export function normalizeApiUrl(url: string | undefined): string {
  const u = url ?? DEFAULT_SLACK_API_URL;
  return u.endsWith('/') ? u : `${u}/`;
}

/** A @slack/logger Logger that sends warnings and errors to `log` (debug and info are dropped). */
export function loggerFrom(log: SlackLog | undefined): Logger {
  let level = LogLevel.WARN;
  const emit =
    (l: SlackLogLevel) =>
    (...msg: unknown[]) =>
      log?.(l, msg.map(String).join(' '));
  return {
    debug: () => {},
    info: () => {},
    warn: emit('warn'),
    error: emit('error'),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

export class SlackConnection {
  readonly apiUrl: string;
  readonly limiter: SlackRateLimiter;
  readonly directory: ApproverDirectory;
  private readonly web: WebClient;
  private identityPromise: Promise<BotIdentity> | undefined;

  constructor(opts: SlackConnectionOptions) {
    this.apiUrl = normalizeApiUrl(opts.apiUrl);
    this.limiter = new SlackRateLimiter({ clock: opts.clock, ...opts.limiter });
    this.web = new WebClient(opts.token, {
      slackApiUrl: this.apiUrl,
      // The limiter owns waiting and retrying: a 429 must reach it at once, not stall WebClient's queue.
      rejectRateLimitedCalls: true,
      retryConfig: { retries: 0 },
      timeout: opts.requestTimeoutMs ?? 15_000,
      logger: loggerFrom(opts.log),
    });
    this.directory = new ApproverDirectory((m, a, o) => this.call(m, a, o), { clock: opts.clock, ...opts.directory });
  }

  /** One Web API call through the limiter; failures are SlackApprovalErrors. */
  async call(method: string, args: Record<string, unknown>, opts: RunOptions = {}): Promise<Record<string, unknown>> {
    return this.limiter.run(
      method,
      async () => {
        try {
          return (await this.web.apiCall(method, args)) as unknown as Record<string, unknown>;
        } catch (e) {
          throw classifySlackError(method, e);
        }
      },
      opts,
    );
  }

  /** The bot's own identity (auth.test), cached; a failed lookup is retried on the next call. */
  identity(refresh = false): Promise<BotIdentity> {
    if (!this.identityPromise || refresh) {
      const p = this.call('auth.test', {}, { priority: 'high' }).then((r) => {
        if (typeof r.user_id !== 'string') throw new SlackApprovalError('retryable', 'bad_response', 'auth.test', 'Slack auth.test: answer without user_id');
        const id: BotIdentity = { userId: r.user_id };
        if (typeof r.bot_id === 'string') id.botId = r.bot_id;
        if (typeof r.team === 'string') id.team = r.team;
        if (typeof r.team_id === 'string') id.teamId = r.team_id;
        return id;
      });
      p.catch(() => {
        if (this.identityPromise === p) this.identityPromise = undefined;
      });
      this.identityPromise = p;
    }
    return this.identityPromise;
  }

  close(): void {
    this.limiter.close();
  }
}

/**
 * Hands out one SlackConnection per (API URL, token). Keys hold a hash, not the token. A closed pool
 * hands out nothing: a caller still running after its owner stopped (a reconcile in flight when an
 * operator steps down) must not open a connection nobody will close. `memories`, when given,
 * outlives the pool: the next pool for the same token resumes its spent rate budget.
 */
export class SlackConnectionPool {
  private readonly connections = new Map<string, SlackConnection>();
  private readonly memories: RateLimitMemories;
  private closed = false;

  constructor(
    private readonly defaults: Omit<SlackConnectionOptions, 'token' | 'apiUrl'> = {},
    memories?: RateLimitMemories,
  ) {
    this.memories = memories ?? new RateLimitMemories(defaults.clock);
  }

  static key(token: string, apiUrl?: string): string {
    return `${normalizeApiUrl(apiUrl)} ${createHash('sha256').update(token).digest('hex')}`;
  }

  get(token: string, apiUrl?: string): SlackConnection {
    if (this.closed) throw new SlackApprovalError('permanent', 'closed', 'connect', 'Slack: the Slack clients were closed');
    const key = SlackConnectionPool.key(token, apiUrl);
    let c = this.connections.get(key);
    if (!c) {
      c = new SlackConnection({ ...this.defaults, token, apiUrl, limiter: { ...this.defaults.limiter, memory: this.memories.get(key) } });
      this.connections.set(key, c);
    }
    return c;
  }

  /** Drops a token's connection (e.g. its Secret changed); its queued calls fail as closed. */
  release(token: string, apiUrl?: string): void {
    const key = SlackConnectionPool.key(token, apiUrl);
    this.connections.get(key)?.close();
    this.connections.delete(key);
  }

  get size(): number {
    return this.connections.size;
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}
