// The Slack poller component: outcomes kept until the ApprovalRequest controller writes them, one
// retry after a refused token (with the Secret forgotten), and channel changes stopping polls. The
// message polls are scripted here; the real Slack client runs against the fake Slack in
// e2e/approvals.test.ts.
import { createLogger } from '../lib/log.js';
import { SlackApprovalError, type PollResult } from '../slack/index.js';
import type { KubeObject } from './kube-object.js';
import type { ChannelTarget } from './slack-channels.js';
import { SlackPoller } from './slack-poller.js';

const log = createLogger('error', () => undefined);
const channel = (generation: number): KubeObject => ({ metadata: { name: 'approvals', namespace: 'team-a', generation } });

/** A channel target whose polls answer from `answer` (a result, or an error to throw). */
function target(answer: () => PollResult, connKey = 'token-1', generation = 1): ChannelTarget {
  return {
    channel: channel(generation),
    connKey,
    spec: { slack: { tokenSecretRef: { name: 'slack-bot', key: 'token' } } },
    client: { pending: (id: string, _ts: string, expiresAt: Date) => ({ id, expiresAt, poll: async () => answer() }) },
  } as unknown as ChannelTarget;
}

function poller() {
  const woken: string[] = [];
  const forgotten: string[] = [];
  const p = new SlackPoller({
    log,
    backoff: { initialMs: 5, maxMs: 5 },
    wake: (id) => woken.push(id),
    forgetSecret: (ns, name) => forgotten.push(`${ns}/${name}`),
  });
  const wokenOnce = (id: string) =>
    new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (woken.includes(id)) {
          clearInterval(t);
          resolve();
        }
      }, 2);
    });
  return { p, woken, forgotten, wokenOnce };
}

const inAnHour = () => new Date(Date.now() + 3600_000);

describe('SlackPoller', () => {
  test('a decision is kept as the outcome until done(); the request is woken', async () => {
    const { p, wokenOnce } = poller();
    p.start(
      'team-a/r1',
      target(() => ({ decision: { outcome: 'approved', by: ['U1'] }, fingerprint: 'f' })),
      '1.2',
      inAnHour(),
    );
    expect(p.isPolling('team-a/r1')).toBe(true);
    await wokenOnce('team-a/r1');
    expect(p.isPolling('team-a/r1')).toBe(false);
    expect(p.outcome('team-a/r1')).toMatchObject({ status: 'approved', by: ['U1'] });
    p.done('team-a/r1');
    expect(p.outcome('team-a/r1')).toBeUndefined();
    p.close();
  });

  test('closed (its term ended): a late start polls nothing', async () => {
    const { p } = poller();
    let polls = 0;
    p.close();
    p.start(
      'team-a/r1',
      target(() => {
        polls++;
        return { decision: null, fingerprint: 'f' };
      }),
      '1.2',
      inAnHour(),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(polls).toBe(0);
    expect(p.isPolling('team-a/r1')).toBe(false);
  });

  test('a refused token: the Secret is forgotten and the request woken without an outcome, once; the second refusal fails it', async () => {
    const { p, woken, forgotten, wokenOnce } = poller();
    const refused = () => {
      throw new SlackApprovalError('permanent', 'invalid_auth', 'reactions.get', 'Slack reactions.get: invalid_auth');
    };
    p.start('team-a/r1', target(refused), '1.2', inAnHour());
    await wokenOnce('team-a/r1');
    expect(forgotten).toEqual(['team-a/slack-bot']);
    expect(p.outcome('team-a/r1')).toBeUndefined();
    woken.length = 0;
    p.start('team-a/r1', target(refused), '1.2', inAnHour());
    await wokenOnce('team-a/r1');
    expect(forgotten).toHaveLength(1);
    expect(p.outcome('team-a/r1')).toMatchObject({ status: 'failed', message: expect.stringContaining('invalid_auth') });
    p.close();
  });

  test('a channel update with a new generation, or its deletion, stops its polls and names them; a status-only update does not', () => {
    const { p } = poller();
    const quiet = () => ({ decision: null, fingerprint: 'q' });
    p.start('team-a/r1', target(quiet), '1.2', inAnHour());
    p.start('team-a/r2', target(quiet), '1.3', inAnHour());
    expect(p.channelChanged(channel(1), false)).toEqual([]);
    expect(p.channelChanged({ metadata: { name: 'approvals', namespace: 'team-b', generation: 2 } }, true)).toEqual([]);
    expect(p.channelChanged(channel(2), false)).toEqual(['team-a/r1', 'team-a/r2']);
    expect(p.isPolling('team-a/r1')).toBe(false);
    p.start('team-a/r1', target(quiet), '1.2', inAnHour());
    expect(p.channelChanged(channel(1), true)).toEqual(['team-a/r1']);
    p.close();
  });
});
