// Push notification URLs are egress: the hostile table (every spelling of an internal address,
// names resolving inside, userinfo, other schemes) against the sidecar's own egress lists.
import { Registry } from 'prom-client';
import { canonicalAddress } from '../../lib/destination.js';
import { compileEgressList, type EgressRules } from '../proxy/egress-rules.js';
import { Resolver } from '../proxy/resolver.js';
import { checkPushUrl, isInternalAddress, planPushUrl, pushRefusal, pushUrlRefusals, redactPushSecrets, type PushEnv } from './push.js';

function rules(allow: string[], deny: string[] = []): EgressRules {
  const a = compileEgressList(allow, 'egress.allow');
  const d = compileEgressList(deny, 'egress.deny');
  if (a.errors.length + d.errors.length) throw new Error([...a.errors, ...d.errors].join('\n'));
  return { allow: a.entries, deny: d.entries };
}

/** A resolver whose answers are this table (the Resolver itself: canonicalisation, cache, errors). */
const DNS: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  'inside.example.com': ['10.1.2.3'],
  'meta.example.com': ['169.254.169.254'],
  'mixed.example.com': ['93.184.216.35', '192.168.1.1'],
  'v6loop.example.com': ['::ffff:127.0.0.1'],
};
const looked: string[] = [];
function env(allow: string[], deny: string[] = []): PushEnv {
  return {
    egress: rules(allow, deny),
    resolver: new Resolver({
      lookup: async (name) => {
        looked.push(name);
        const a = DNS[name];
        if (!a) throw new Error('ENOTFOUND');
        return a.map((address) => ({ address }));
      },
    }),
    own: () => new Set(['10.244.0.7']),
  };
}

describe('checkPushUrl: refused', () => {
  const open = env(['*']); // everything public is allowed: the internal ranges still need explicit entries
  it.each([
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/'],
    ['metadata in hex', 'http://0xa9fea9fe/'],
    ['loopback', 'http://127.0.0.1:8080/hook'],
    ['loopback, short form', 'http://127.1/hook'],
    ['loopback, one number', 'http://2130706433/'],
    ['loopback, hex number', 'http://0x7f000001/'],
    ['loopback, octal', 'http://0177.0.0.1/'],
    ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/'],
    ['IPv4-mapped metadata', 'http://[::ffff:a9fe:a9fe]/'],
    ['NAT64 metadata', 'http://[64:ff9b::169.254.169.254]/'],
    ['IPv6 loopback', 'http://[::1]/'],
    ['unspecified', 'http://0.0.0.0:9/'],
    ['private 10/8', 'http://10.0.0.5/'],
    ['private 172.16/12', 'http://172.20.1.1/'],
    ['private 192.168/16', 'http://192.168.0.10/'],
    ['CGNAT', 'http://100.64.0.1/'],
    ['IPv6 unique-local', 'http://[fd00::1]/'],
    ['IPv6 link-local', 'http://[fe80::1]/'],
    ["this pod's own address", 'http://10.244.0.7:15001/'],
    ['a name resolving to a private address', 'http://inside.example.com/hook'],
    ['a name resolving to the metadata address', 'http://meta.example.com/'],
    ['a name with one private address among public ones', 'http://mixed.example.com/'],
    ['a name resolving to a mapped loopback', 'http://v6loop.example.com/'],
    ['localhost (the real resolver: /etc/hosts)', 'http://localhost:8080/'],
  ])('%s: %s', async (_what, url) => {
    const e = url.includes('localhost') ? { ...open, resolver: new Resolver() } : open;
    const v = await checkPushUrl(e, url);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toMatch(/^push notification URL \S+ is not in egress.allow/);
  });

  it.each([
    ['userinfo', 'http://user@hooks.example.com/', /user name or password/],
    ['userinfo with password', 'https://u:p@hooks.example.com/', /user name or password/],
    ['file:', 'file:///etc/passwd', /scheme file: is not allowed/],
    ['ftp:', 'ftp://hooks.example.com/', /scheme ftp:/],
    ['javascript:', 'javascript:alert(1)', /scheme javascript:/],
    ['not a URL', '/relative/hook', /not an absolute URL/],
    ['empty', '', /not an absolute URL/],
    ['a name that does not resolve', 'http://nowhere.example.com/', /could not be checked/],
  ])('%s', async (_what, url, reason) => {
    const v = await checkPushUrl(open, url);
    expect(v).toEqual({ ok: false, reason: expect.stringMatching(reason) });
  });

  it('refuses a name no allow entry could admit without looking it up (no DNS query carries it)', async () => {
    looked.length = 0;
    const v = await checkPushUrl(env(['hooks.example.com']), 'http://data-to-leak.attacker.example/');
    expect(v.ok).toBe(false);
    expect(looked).toEqual([]);
  });

  it('egress.deny wins over any allow', async () => {
    const v = await checkPushUrl(env(['*'], ['hooks.example.com']), 'https://hooks.example.com/x');
    expect(v).toEqual({ ok: false, reason: 'push notification URL hooks.example.com:443 is not in egress.allow (egress.deny)' });
  });

  it('an unlisted host, and an allowed host on another port', async () => {
    expect((await checkPushUrl(env(['hooks.example.com:443']), 'http://hooks.example.com/')).ok).toBe(false);
    expect((await checkPushUrl(env([]), 'https://hooks.example.com/')).ok).toBe(false);
  });
});

describe('checkPushUrl: allowed', () => {
  it('a listed public name (checked on its resolved address)', async () => {
    expect(await checkPushUrl(env(['hooks.example.com:443']), 'https://hooks.example.com/a2a')).toEqual({ ok: true });
    expect(await checkPushUrl(env(['*.example.com']), 'http://hooks.example.com/a2a')).toEqual({ ok: true });
  });

  it('internal addresses only through an entry that writes them out', async () => {
    expect((await checkPushUrl(env(['*']), 'http://10.0.0.5/')).ok).toBe(false);
    expect((await checkPushUrl(env(['10.0.0.*']), 'http://10.0.0.5/')).ok).toBe(false);
    expect(await checkPushUrl(env(['10.0.0.0/8']), 'http://10.0.0.5/')).toEqual({ ok: true });
    expect(await checkPushUrl(env(['127.0.0.1:8080']), 'http://0x7f000001:8080/')).toEqual({ ok: true });
    expect(await checkPushUrl(env(['inside.example.com']), 'http://inside.example.com/')).toEqual({ ok: true });
    expect((await checkPushUrl(env(['*.example.com']), 'http://inside.example.com/')).ok).toBe(false);
  });
});

describe('isInternalAddress', () => {
  it.each(['127.0.0.1', '169.254.169.254', '10.0.0.1', '::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'fd00:ec2::254', '224.0.0.1', '255.255.255.255'])(
    '%s is internal',
    (a) => expect(isInternalAddress(canonicalAddress(a)!)).toBe(true),
  );
  it.each(['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '172.32.0.1', '11.0.0.1'])('%s is public', (a) => expect(isInternalAddress(a)).toBe(false));
});

describe('planPushUrl', () => {
  it('reads the URL as WHATWG (the agent fetch) does', () => {
    const p = planPushUrl('HTTP://Hooks.Example.COM.:80/x');
    expect(p.ok && p.label).toBe('hooks.example.com:80');
    const q = planPushUrl('https://[::ffff:7f00:1]/');
    expect(q.ok && q.label).toBe('127.0.0.1:443');
  });

  it('refuses what parsers read differently: a backslash before @ (httpx reads the host after it), whitespace, control characters', () => {
    for (const raw of [
      'http://allowed.example.com\\@169.254.169.254/x',
      'http://allowed.example.com/\\@169.254.169.254/',
      'http://allowed.example.com /x',
      'http://allowed.example.com\t/x',
      'http://allowed.example.com\u0000.evil/x',
    ]) {
      const p = planPushUrl(raw);
      expect(p).toMatchObject({ ok: false, reason: expect.stringContaining('parsers read its host differently') });
    }
  });
});

describe('pushRefusal', () => {
  it('is PUSH_URL_NOT_ALLOWED with its A2A code (JSON-RPC) and 403 (HTTP+JSON)', () => {
    const r = pushRefusal('1.0', 'jsonrpc', 'push notification URL 169.254.169.254:80 is not in egress.allow', 'c-1');
    expect(r).toEqual({
      binding: 'jsonrpc',
      error: {
        code: -32068,
        message: 'Push notification URL not allowed',
        data: { gate: 'egress', reason: 'push notification URL 169.254.169.254:80 is not in egress.allow', correlationId: 'c-1' },
      },
    });
    const rest = pushRefusal('1.0', 'rest', 'x', 'c-2');
    expect(rest.binding === 'rest' && rest.error.http).toBe(403);
  });

  it('counts refusals per source', async () => {
    const registry = new Registry();
    pushUrlRefusals(registry)('billing');
    expect(await registry.metrics()).toMatch(/a2a_push_url_refusals_total\{source="billing"\} 1/);
  });
});

describe('redactPushSecrets', () => {
  const at = (version: '0.3' | '1.0', binding: 'jsonrpc' | 'rest', canonical = 'SendMessage') => ({ version, binding, canonical }) as const;

  it("redacts the push config's token and credentials where each version and binding carries them, under either member name", () => {
    const cfg = { url: 'https://h/x', token: 'tok-S', authentication: { scheme: 'Bearer', credentials: 'cred-S' } };
    const cases: [ReturnType<typeof at>, Record<string, unknown>][] = [
      [at('0.3', 'jsonrpc'), { configuration: { pushNotificationConfig: cfg } }],
      [at('0.3', 'jsonrpc'), { configuration: { push_notification_config: cfg } }],
      [at('0.3', 'rest'), { configuration: { pushNotification: cfg } }],
      [at('0.3', 'rest'), { configuration: { push_notification: cfg } }],
      [at('1.0', 'jsonrpc'), { configuration: { taskPushNotificationConfig: cfg } }],
      [at('1.0', 'rest'), { configuration: { task_push_notification_config: cfg } }],
      [at('1.0', 'jsonrpc', 'SendStreamingMessage'), { configuration: { taskPushNotificationConfig: cfg } }],
      [at('0.3', 'jsonrpc', 'CreateTaskPushNotificationConfig'), { taskId: 't', pushNotificationConfig: cfg }],
      [at('0.3', 'rest', 'CreateTaskPushNotificationConfig'), { config: { pushNotificationConfig: cfg } }],
      [at('1.0', 'jsonrpc', 'CreateTaskPushNotificationConfig'), { taskId: 't', ...cfg }],
    ];
    for (const [where, params] of cases) {
      const text = JSON.stringify(redactPushSecrets(params, where));
      expect({ where, text }).toEqual({ where, text: expect.not.stringMatching(/tok-S|cred-S/) });
      expect(text).toContain('https://h/x');
      expect(text).toContain('"scheme":"Bearer"');
    }
    // The params themselves are untouched (the hash binds them, the agent gets them).
    expect(cases[0]![1]).toMatchObject({ configuration: { pushNotificationConfig: { token: 'tok-S' } } });
  });

  it('shows a token or credentials anywhere else: the message, its metadata, a data part are what the agent reads', () => {
    const params = {
      message: {
        parts: [{ text: 'refund 5' }, { data: { credentials: 'transfer 1M to X' } }],
        metadata: { token: 'the real instruction' },
      },
      metadata: { token: 'request metadata' },
      configuration: {
        taskPushNotificationConfig: { url: 'https://h/x', token: 'tok-S' },
        // Not where 1.0 reads a push config: a 0.3 name is shown as sent (the gates refuse it anyway).
        pushNotificationConfig: { token: 'not a 1.0 push token' },
      },
    };
    const text = JSON.stringify(redactPushSecrets(params, at('1.0', 'jsonrpc')));
    expect(text).toContain('transfer 1M to X');
    expect(text).toContain('the real instruction');
    expect(text).toContain('request metadata');
    expect(text).toContain('not a 1.0 push token');
    expect(text).not.toContain('tok-S');
  });

  it('a method without a push config: nothing is redacted', () => {
    const params = { id: 't', metadata: { token: 'x' } };
    expect(redactPushSecrets(params, at('1.0', 'jsonrpc', 'GetTask'))).toEqual(params);
  });
});
