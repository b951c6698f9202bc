// decide() and the built CLI against a stand-in API server (node:http): what the real API server
// cannot be made to do on purpose (answer HTML, fail a read, stay silent) and what the request
// carries (impersonation headers, the exec plugin's token, the ownerReference). The real API
// server's side is e2e/approvals-cli.test.ts.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { createTransport } from '../../kube/transport.js';
import { CLI } from '../../test/support/processes.js';
import { decideOptions } from './options.js';
import { decide, DecideSetupError } from './run.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Names and values as node:http read them: one latin1 character per byte. */
  rawHeaders: string[];
  body: string;
}
type Answer = { status: number; body: unknown; type?: string };

const NS = 'agents';
const BASE = `/apis/thoughtgate.io/v1alpha1/namespaces/${NS}`;
const ME = { username: 'alice', groups: ['oncall', 'system:authenticated'] };

/** A stand-in API server: `route` answers, every request is recorded. */
async function apiServer(route: (s: Seen) => Answer | undefined) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body };
      seen.push(s);
      const a = route(s) ?? { status: 404, body: { kind: 'Status', message: `no route ${s.method} ${s.url}` } };
      res.writeHead(a.status, { 'content-type': a.type ?? 'application/json' });
      res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

/** The happy path: who am I, an open request with a uid, a created decision; `decision` answers the reads back. */
const happy =
  (
    decision: (n: number) => Answer = () => ({
      status: 200,
      body: { metadata: { name: 'req-abc' }, status: { phase: 'Counted', requestPhase: 'Approved', approvals: '1/1' } },
    }),
  ) =>
  (s: Seen): Answer | undefined => {
    if (s.url === '/apis/authentication.k8s.io/v1/selfsubjectreviews') return { status: 201, body: { status: { userInfo: ME } } };
    if (s.method === 'GET' && s.url === `${BASE}/approvalrequests/req`)
      return { status: 200, body: { metadata: { name: 'req', uid: 'uid-of-req' }, spec: { expiresAt: '2999-01-01T00:00:00Z' }, status: { phase: 'Posted' } } };
    if (s.method === 'POST' && s.url === `${BASE}/approvaldecisions`) return { status: 201, body: { metadata: { name: 'req-abc' } } };
    if (s.method === 'GET' && s.url === `${BASE}/approvaldecisions/req-abc`) return decision(++reads);
    return undefined;
  };
let reads = 0;
beforeEach(() => {
  reads = 0;
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tg-decide-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A kubeconfig for `server` with this `user` map. */
function kubeconfig(name: string, server: string, user: Record<string, unknown>): string {
  const file = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    file,
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: NS } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

const collect = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, write: (s: string) => void out.push(s), warn: (s: string) => void err.push(s) };
};

const cli = (args: string[]) =>
  new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', HOME: dir } }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });

test("the decision is owned by its request (the request's uid, not a controller, not blocking its deletion)", async () => {
  const api = await apiServer(happy());
  try {
    const c = collect();
    const file = kubeconfig('plain', api.url, { token: 'tok' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file, 'no-wait': true }), { write: c.write, warn: c.warn })).resolves.toBe(0);
    const created = JSON.parse(api.seen.find((s) => s.method === 'POST' && s.url.endsWith('/approvaldecisions'))!.body);
    expect(created.metadata.ownerReferences).toEqual([
      { apiVersion: 'thoughtgate.io/v1alpha1', kind: 'ApprovalRequest', name: 'req', uid: 'uid-of-req', controller: false, blockOwnerDeletion: false },
    ]);
    expect(created.spec.user).toEqual(ME);
    expect(api.seen.every((s) => s.headers.authorization === 'Bearer tok' && s.headers['impersonate-user'] === undefined)).toBe(true);
    expect(c.err).toEqual([]);
  } finally {
    await api.close();
  }
});

test('a user who may not read the request still decides, told that the decision is not owned by it', async () => {
  const api = await apiServer((s) =>
    s.method === 'GET' && s.url.endsWith('/approvalrequests/req') ? { status: 403, body: { kind: 'Status', message: 'forbidden' } } : happy()(s),
  );
  try {
    const c = collect();
    const file = kubeconfig('noread', api.url, { token: 'tok' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file, 'no-wait': true }), { write: c.write, warn: c.warn })).resolves.toBe(0);
    expect(JSON.parse(api.seen.find((s) => s.method === 'POST' && s.url.endsWith('/approvaldecisions'))!.body).metadata.ownerReferences).toBeUndefined();
    expect(c.err.join('')).toContain('the decision has no ownerReference and is not deleted with the request');
  } finally {
    await api.close();
  }
});

test("the kubeconfig's impersonation is sent on every request, and --as/--as-group override it", async () => {
  const api = await apiServer(happy());
  try {
    const file = kubeconfig('as', api.url, {
      token: 'admin',
      as: 'alice',
      'as-groups': ['oncall', 'dev'],
      'as-uid': 'u-1',
      'as-user-extra': { 'example.com/team': ['a', 'b'] },
    });
    const c = collect();
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file, 'no-wait': true }), { write: c.write, warn: c.warn })).resolves.toBe(0);
    for (const s of api.seen)
      expect(s.headers).toMatchObject({
        authorization: 'Bearer admin',
        'impersonate-user': 'alice',
        'impersonate-group': 'oncall, dev',
        'impersonate-uid': 'u-1',
        'impersonate-extra-example.com%2fteam': 'a, b',
      });
    api.seen.length = 0;
    await expect(
      decide(decideOptions('approve', ['req'], { kubeconfig: file, 'no-wait': true, as: 'bob', 'as-group': ['sre'] }), { write: c.write, warn: c.warn }),
    ).resolves.toBe(0);
    expect(api.seen[0]!.headers).toMatchObject({ 'impersonate-user': 'bob', 'impersonate-group': 'sre', 'impersonate-uid': 'u-1' });
  } finally {
    await api.close();
  }
});

test('impersonated names are sent as UTF-8 bytes, as kubectl sends them (not latin1, not refused above U+00FF)', async () => {
  const api = await apiServer(happy());
  const wire = (s: Seen, name: string) =>
    s.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [Buffer.from(s.rawHeaders[i + 1]!, 'latin1').toString('hex')] : []));
  const utf8 = (...v: string[]) => v.map((x) => Buffer.from(x, 'utf8').toString('hex'));
  try {
    const file = kubeconfig('utf8', api.url, { token: 'admin', 'as-user-extra': { 'example.com/team': ['Ärzte'] } });
    for (const [as, groups] of [
      ['jürgen', ['grüne']],
      ['山田太郎', ['開発']],
    ] as const) {
      api.seen.length = 0;
      const c = collect();
      await expect(
        decide(decideOptions('approve', ['req'], { kubeconfig: file, 'no-wait': true, as, 'as-group': [...groups], 'as-uid': `${as}-uid` }), c),
      ).resolves.toBe(0);
      for (const s of api.seen) {
        expect(wire(s, 'impersonate-user')).toEqual(utf8(as));
        expect(wire(s, 'impersonate-group')).toEqual(utf8(...groups));
        expect(wire(s, 'impersonate-uid')).toEqual(utf8(`${as}-uid`));
        expect(wire(s, 'impersonate-extra-example.com%2fteam')).toEqual(utf8('Ärzte'));
      }
    }
  } finally {
    await api.close();
  }
});

test('a header the HTTP client refuses is a setup error naming the flag, not "cannot reach"', async () => {
  const api = await apiServer(happy());
  const transport = createTransport({
    server: api.url,
    credentials: { describe: 'none', tls: async () => ({}), authorization: async () => undefined },
    // What impersonationHeaders never hands over (a character above U+00FF), straight to the client.
    headers: { 'impersonate-user': '山田' },
  });
  try {
    const r = decide(decideOptions('approve', ['req'], { 'no-wait': true }), { ...collect(), transport, namespace: NS });
    await expect(r).rejects.toThrow(DecideSetupError);
    await expect(r).rejects.toThrow(
      'cannot create SelfSubjectReview: the impersonate-user header (from --as (or the kubeconfig user\'s "as")) is not a value an HTTP header can carry',
    );
    expect(api.seen).toEqual([]);
  } finally {
    await transport.close();
    await api.close();
  }
});

test('groups to impersonate without a user: a setup error before anything is sent', async () => {
  const api = await apiServer(happy());
  try {
    const file = kubeconfig('groups-only', api.url, { token: 'admin' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file, 'as-group': ['oncall'] }), collect())).rejects.toThrow(
      /impersonating groups, a uid or extras needs a user to impersonate/,
    );
    expect(api.seen).toEqual([]);
  } finally {
    await api.close();
  }
});

test("an exec plugin's token is used; a plugin that waits for input fails with its name instead of hanging", async () => {
  const api = await apiServer(happy());
  try {
    const ok = join(dir, 'ok.mjs');
    writeFileSync(
      ok,
      `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-tok' } }));`,
    );
    const exec = (args: string[], interactiveMode = 'IfAvailable') => ({
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args, interactiveMode },
    });
    const c = collect();
    const okFile = kubeconfig('exec-ok', api.url, exec([ok]));
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: okFile, 'no-wait': true }), { ...c, connect: { stdinIsTTY: false } })).resolves.toBe(0);
    expect(api.seen.map((s) => s.headers.authorization)).toEqual(['Bearer exec-tok', 'Bearer exec-tok', 'Bearer exec-tok']);

    // Waits on stdin for a password that never comes. With interactiveMode Never it gets no stdin
    // even from a terminal, and nothing outlives the bound.
    const waits = join(dir, 'waits.mjs');
    writeFileSync(waits, `process.stderr.write('Password: '); process.stdin.resume(); setInterval(() => {}, 1000);`);
    api.seen.length = 0;
    const hangs = kubeconfig('exec-hangs', api.url, exec([waits], 'Never'));
    const e = collect();
    const r = decide(decideOptions('approve', ['req'], { kubeconfig: hangs }), { ...e, connect: { stdinIsTTY: true, execTimeoutMs: 500 } });
    await expect(r).rejects.toThrow(DecideSetupError);
    await expect(r).rejects.toThrow(/the credential plugin ".*waits\.mjs" \(kubeconfig user u\) gave no credential within 500 ms/);
    expect(e.err.join('')).toContain('Password: ');
    expect(api.seen).toEqual([]);
  } finally {
    await api.close();
  }
});

test.each<[string, (s: Seen) => Answer | undefined]>([
  [
    'who am I',
    (s) => (s.url.includes('selfsubjectreviews') ? { status: 200, type: 'text/html; charset=utf-8', body: '<html><body>Sign in</body></html>' } : undefined),
  ],
  ['the request', (s) => (s.url.endsWith('/approvalrequests/req') ? { status: 200, type: 'text/html', body: '<html>proxy</html>' } : happy()(s))],
  ['the create', (s) => (s.method === 'POST' && s.url.endsWith('/approvaldecisions') ? { status: 201, type: 'text/plain', body: 'ok' } : happy()(s))],
])('a 200 with a non-JSON body (%s) is a clear setup error, never a crash', async (_what, route) => {
  const api = await apiServer(route);
  try {
    const file = kubeconfig('html', api.url, { token: 'tok' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file }), collect())).rejects.toThrow(
      new RegExp(`^the API server at ${api.url.replace(/\./g, '\\.')} answered 20[01] with a non-JSON body \\(text/`),
    );
  } finally {
    await api.close();
  }
});

test('the built CLI: a proxy page is exit 2 with the sentence', async () => {
  const api = await apiServer(() => ({ status: 200, type: 'text/html', body: '<!doctype html><title>Login</title>' }));
  try {
    const r = await cli(['approve', 'req', '--kubeconfig', kubeconfig('cli-html', api.url, { token: 'tok' })]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      `thoughtgate approve: the API server at ${api.url} answered 200 with a non-JSON body (text/html: "<!doctype html><title>Login</title>")`,
    );
    expect(r.err).not.toContain('    at ');
  } finally {
    await api.close();
  }
});

test('reading the decision back survives failed reads (a 503 page) until it is counted', async () => {
  const api = await apiServer(
    happy((n) =>
      n < 3
        ? { status: 503, type: 'text/html', body: '<html>busy</html>' }
        : { status: 200, body: { status: { phase: 'Counted', requestPhase: 'Approved', approvals: '1/1' } } },
    ),
  );
  try {
    const c = collect();
    const file = kubeconfig('flaky', api.url, { token: 'tok' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file, timeout: '10s' }), { ...c, pollMs: 20 })).resolves.toBe(0);
    expect(c.out.join('')).toContain('approve by alice counted. The ApprovalRequest is Approved (approvals 1/1)');
  } finally {
    await api.close();
  }
});

test('a decision deleted while waiting (its request deleted) is said so', async () => {
  const api = await apiServer(happy(() => ({ status: 404, body: { kind: 'Status', message: 'not found' } })));
  try {
    const c = collect();
    const file = kubeconfig('deleted', api.url, { token: 'tok' });
    await expect(decide(decideOptions('approve', ['req'], { kubeconfig: file }), { ...c, pollMs: 20 })).resolves.toBe(1);
    expect(c.out.join('')).toContain('ApprovalDecision agents/req-abc was deleted before the operator counted it');
  } finally {
    await api.close();
  }
});

test('interrupted while waiting: 130, and where the decision is', async () => {
  const api = await apiServer(happy(() => ({ status: 200, body: { metadata: { name: 'req-abc' } } })));
  try {
    const c = collect();
    const ac = new AbortController();
    const file = kubeconfig('int', api.url, { token: 'tok' });
    const r = decide(decideOptions('approve', ['req'], { kubeconfig: file }), { ...c, pollMs: 20, signal: ac.signal });
    while (reads < 2) await new Promise((res) => setTimeout(res, 10));
    ac.abort();
    await expect(r).resolves.toBe(130);
    expect(c.err.join('')).toBe(
      'thoughtgate approve: interrupted; the decision was created as agents/req-abc; the request is still pending (kubectl get approvaldecision req-abc -n agents shows whether the operator counted it)\n',
    );
  } finally {
    await api.close();
  }
});

test('the built CLI on Ctrl-C (SIGINT) while waiting: exit 130 with the decision named', async () => {
  const api = await apiServer(happy(() => ({ status: 200, body: { metadata: { name: 'req-abc' } } })));
  try {
    const child = spawn(process.execPath, [CLI, 'reject', 'req', '--kubeconfig', kubeconfig('sigint', api.url, { token: 'tok' })], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dir },
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    while (reads < 1) await new Promise((res) => setTimeout(res, 20));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain('thoughtgate reject: interrupted; the decision was created as agents/req-abc; the request is still pending');
  } finally {
    await api.close();
  }
});
