// Capture and custody in the pod mutation: opt-in, the init container, ports, the bypass check,
// and Secret mounts that only the sidecar container gets. Patches are applied with the strict
// RFC 6902 applier, as the apiserver would.
import { applyJsonPatch } from './jsonpatch.js';
import { mutatePod, type Container, type InjectionSettings, type MutationInput, type Pod } from './mutate.js';
import { captureInitArgs } from './capture.js';
import { MAX_SECRET_MOUNTS, secretVolumeName } from './custody.js';
import { policyNeeds } from './policy-needs.js';

const settings: InjectionSettings = {
  image: 'ghcr.io/thoughtgate/thoughtgate-sidecar:0.1.0',
  version: '0.1.0',
  operator: { namespace: 'thoughtgate-system', podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } } },
};
const ns = (labels: Record<string, string> = {}) => ({ name: 'agents', labels: { 'thoughtgate.io/inject': 'enabled', ...labels } });
/** A pod that cannot walk around capture. */
const safe = (annotations: Record<string, string> = {}, labels: Record<string, string> = { app: 'agent' }): Pod => ({
  metadata: { name: 'agent', labels, annotations },
  spec: {
    securityContext: { runAsNonRoot: true, runAsUser: 1000 },
    containers: [{ name: 'app', image: 'agent:1', securityContext: { allowPrivilegeEscalation: false } }],
  },
});
const policy = (spec: Record<string, unknown>) => ({
  apiVersion: 'thoughtgate.io/v1alpha1',
  kind: 'GovernancePolicy',
  metadata: { name: 'p', namespace: 'agents' },
  spec,
});

function run(pod: Pod, over: Partial<MutationInput> = {}) {
  const i: MutationInput = { pod, namespace: ns(), operation: 'CREATE', settings, ...over };
  const r = mutatePod(i);
  return { r, pod: applyJsonPatch(i.pod, r.patch) };
}
const init = (p: Pod): Container[] => p.spec!.initContainers ?? [];
const captureOf = (p: Pod) => init(p).find((c) => c.name === 'thoughtgate-capture');
const sidecarOf = (p: Pod) => [...init(p), ...p.spec!.containers!].find((c) => c.name === 'thoughtgate')!;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe('capture opt-in', () => {
  it('is off by default: no init container, no capture env, no captured annotation', () => {
    const { r, pod } = run(safe());
    expect(r.injected).toBe(true);
    expect(captureOf(pod)).toBeUndefined();
    expect(envOf(sidecarOf(pod))).not.toHaveProperty('THOUGHTGATE_TRANSPARENT_PORT');
    expect(pod.metadata!.annotations).not.toHaveProperty('thoughtgate.io/captured');
  });

  it.each([
    ['the pod annotation', { pod: safe({ 'thoughtgate.io/capture': 'enabled' }) }, /annotation thoughtgate.io\/capture=enabled/],
    ['the namespace label', { pod: safe(), namespace: ns({ 'thoughtgate.io/capture': 'enabled' }) }, /namespace label/],
    ['the chart default', { pod: safe(), settings: { ...settings, capture: { enabled: true } } }, /capture.enabled=true/],
  ])('is on by %s', (_what, over, why) => {
    const { r, pod } = run(over.pod, over);
    expect(r.reason).toMatch(why);
    expect(init(pod).map((c) => c.name)).toEqual(['thoughtgate-capture', 'thoughtgate']);
  });

  it('a pod annotation "disabled" wins over the namespace label and the chart default', () => {
    const { r, pod } = run(safe({ 'thoughtgate.io/capture': 'disabled' }), {
      namespace: ns({ 'thoughtgate.io/capture': 'enabled' }),
      settings: { ...settings, capture: { enabled: true } },
    });
    expect(r.injected).toBe(true);
    expect(captureOf(pod)).toBeUndefined();
  });

  it('a namespace label "disabled" wins over the chart default', () => {
    const { pod } = run(safe(), { namespace: ns({ 'thoughtgate.io/capture': 'disabled' }), settings: { ...settings, capture: { enabled: true } } });
    expect(captureOf(pod)).toBeUndefined();
  });

  it('warns when a pod asks for capture but gets no sidecar', () => {
    const { r } = run(safe({ 'thoughtgate.io/capture': 'enabled' }), { namespace: { name: 'plain', labels: {} } });
    expect(r.injected).toBe(false);
    expect(r.warnings.join()).toMatch(/thoughtgate.io\/capture=enabled but no sidecar is injected/);
  });
});

describe('the captured pod', () => {
  const captured = () =>
    run(
      {
        ...safe({ 'thoughtgate.io/capture': 'enabled' }),
        spec: { ...safe().spec!, initContainers: [{ name: 'migrate', image: 'm:1', securityContext: { allowPrivilegeEscalation: false } }] },
      },
      { policies: [policy({ sources: [{ name: 'a', url: 'http://mcp.internal:8080/mcp' }] })] },
    );

  it('runs the init container first, as root with NET_ADMIN and NET_RAW only, read-only, with the flags of capture-init', () => {
    const { pod } = captured();
    expect(init(pod).map((c) => c.name)).toEqual(['thoughtgate-capture', 'thoughtgate', 'migrate']);
    const c = captureOf(pod)!;
    expect(c.image).toBe(settings.image);
    expect(c.args).toEqual([
      'capture-init',
      '--uid',
      '7467',
      '--redirect-ports',
      '8080',
      '--transparent-port',
      '7470',
      '--dns',
      'resolv',
      '--state-file',
      '/var/run/thoughtgate/capture/state.json',
    ]);
    expect(c.securityContext).toEqual({
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(envOf(c)).toEqual({ XTABLES_LOCKFILE: '/var/run/thoughtgate/capture/xtables.lock' });
    expect(c.resources?.limits).toBeDefined();
  });

  it('mounts the state volume into the init container and the sidecar, never into the app', () => {
    const { pod } = captured();
    const mounts = (c: Container) => (c.volumeMounts ?? []).map((m) => m.name);
    expect(mounts(captureOf(pod)!)).toEqual(['thoughtgate-capture']);
    expect(sidecarOf(pod).volumeMounts).toContainEqual({ name: 'thoughtgate-capture', mountPath: '/var/run/thoughtgate/capture', readOnly: true });
    for (const c of [...pod.spec!.containers!, init(pod)[2]!]) expect(mounts(c)).not.toContain('thoughtgate-capture');
    expect(pod.spec!.volumes).toContainEqual({ name: 'thoughtgate-capture', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  });

  it('gives the sidecar its capture env and the pod the captured annotation', () => {
    const { pod } = captured();
    expect(envOf(sidecarOf(pod))).toMatchObject({ THOUGHTGATE_TRANSPARENT_PORT: '7470', THOUGHTGATE_CAPTURE_STATE: '/var/run/thoughtgate/capture/state.json' });
    expect(envOf(sidecarOf(pod))).not.toHaveProperty('THOUGHTGATE_TLS_PORT');
    expect(envOf(pod.spec!.containers![0]!)).not.toHaveProperty('THOUGHTGATE_CAPTURE_STATE');
    expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!)).toEqual({ ports: [8080], tls: 'reject', dns: 'resolv', exceptions: [] });
  });

  it('is idempotent: a second pass changes nothing', () => {
    const { pod } = captured();
    expect(run(pod).r).toMatchObject({ patch: [], injected: false });
  });

  it('redirects the union of the policies’ http ports, the annotation and the chart; TLS, DNS and exceptions from either', () => {
    const { pod } = run(
      safe({
        'thoughtgate.io/capture': 'enabled',
        'thoughtgate.io/capture-ports': '9000, 8080',
        'thoughtgate.io/capture-allow': '10.0.0.0/8:5432,fd00::/8:*',
        'thoughtgate.io/capture-tls': 'passthrough',
      }),
      {
        settings: { ...settings, capture: { ports: [3000], dns: 'any', exceptions: [{ cidr: '192.0.2.0/24', family: 4, port: 53 }] } },
        policies: [
          policy({
            sources: [
              { name: 'a', url: 'http://a/mcp' },
              { name: 'b', url: 'https://b/mcp' },
              { name: 'c', url: 'http://c:8080/' },
            ],
          }),
          policy({ podSelector: { matchLabels: { app: 'other' } }, sources: [{ name: 'd', url: 'http://d:7000/' }] }),
        ],
      },
    );
    const args = captureOf(pod)!.args!;
    expect(args.slice(args.indexOf('--redirect-ports'), args.indexOf('--redirect-ports') + 2)).toEqual(['--redirect-ports', '80,3000,8080,9000']);
    expect(args).toEqual(expect.arrayContaining(['--tls-port', '7471', '--dns', 'any']));
    expect(args.filter((_, i) => args[i - 1] === '--allow')).toEqual(['192.0.2.0/24:53', '10.0.0.0/8:5432', 'fd00::/8:*']);
    expect(envOf(sidecarOf(pod))).toMatchObject({ THOUGHTGATE_TLS_PORT: '7471' });
    expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!)).toEqual({
      ports: [80, 3000, 8080, 9000],
      tls: 'passthrough',
      dns: 'any',
      exceptions: ['192.0.2.0/24:53', '10.0.0.0/8:5432', 'fd00::/8:*'],
    });
  });

  it('always gives --redirect-ports, even empty (left out, capture-init would redirect its default 80)', () => {
    const args = captureInitArgs({ uid: 7467, redirectPorts: [], transparentPort: 7470, tlsPort: null, dns: 'none', exceptions: [] });
    expect(args.slice(args.indexOf('--redirect-ports'), args.indexOf('--redirect-ports') + 2)).toEqual(['--redirect-ports', '']);
  });

  it('refuses 443 as both a redirect port and TLS passthrough (capture-init would)', () => {
    const { r } = run(safe({ 'thoughtgate.io/capture': 'enabled', 'thoughtgate.io/capture-ports': '443', 'thoughtgate.io/capture-tls': 'passthrough' }));
    expect(r.denied).toMatch(/port 443 is both a plain-HTTP redirect port .* and TLS passthrough: choose one/);
  });

  it('passes on what the parser changed, as a warning', () => {
    const { r, pod } = run(safe({ 'thoughtgate.io/capture': 'enabled', 'thoughtgate.io/capture-allow': '10.1.2.3/8:5432' }));
    expect(r.warnings).toContain('thoughtgate: capture: "10.1.2.3/8" has host bits set: using 10.0.0.0/8');
    expect(captureOf(pod)!.args).toEqual(expect.arrayContaining(['--allow', '10.0.0.0/8:5432']));
  });

  it.each([
    ['thoughtgate.io/capture', 'yes', /annotation thoughtgate.io\/capture: "yes" is not enabled or disabled/],
    ['thoughtgate.io/capture-ports', '80,http', /annotation thoughtgate.io\/capture-ports: "http" is not a port \(1-65535\) in "80,http"/],
    ['thoughtgate.io/capture-allow', 'db.internal:5432', /annotation thoughtgate.io\/capture-allow: "db.internal:5432": expected CIDR:PORT/],
    ['thoughtgate.io/capture-dns', 'all', /annotation thoughtgate.io\/capture-dns: "all" is not one of resolv, any, none/],
    ['thoughtgate.io/capture-tls', 'yes', /annotation thoughtgate.io\/capture-tls: "yes" is not passthrough or reject/],
  ])('denies a pod whose %s annotation is "%s", saying why', (key, value, message) => {
    const annotations = key === 'thoughtgate.io/capture' ? { [key]: value } : { 'thoughtgate.io/capture': 'enabled', [key]: value };
    const { r } = run(safe(annotations));
    expect(r).toMatchObject({ patch: [], injected: false });
    expect(r.denied).toMatch(message);
  });

  it('ignores the other capture annotations of a pod that is not captured', () => {
    expect(run(safe({ 'thoughtgate.io/capture-ports': 'junk' })).r.injected).toBe(true);
  });
});

describe('the bypass check', () => {
  const withApp = (app: Partial<Container>, podSc: Pod['spec'] extends infer S ? (S extends { securityContext?: infer P } ? P : never) : never = {}) =>
    ({
      metadata: { name: 'agent', annotations: { 'thoughtgate.io/capture': 'enabled' } },
      spec: { securityContext: podSc, containers: [{ name: 'app', image: 'a', ...app }] },
    }) as Pod;
  const ok = { allowPrivilegeEscalation: false };

  it.each([
    [
      'runs as the sidecar’s UID',
      withApp({ securityContext: { ...ok, runAsUser: 7467 } }),
      /container "app": it runs as UID 7467, the sidecar's .* set securityContext.runAsUser/,
    ],
    ['inherits the sidecar’s UID from the pod', withApp({ securityContext: ok }, { runAsUser: 7467, runAsNonRoot: true }), /UID 7467/],
    ['runs as root', withApp({ securityContext: { ...ok, runAsUser: 0 } }), /it runs as root: set securityContext.runAsUser/],
    ['has no runAsUser and no runAsNonRoot', withApp({ securityContext: ok }), /it may run as root .*set securityContext.runAsNonRoot: true/],
    ['may escalate privileges (unset)', withApp({}, { runAsNonRoot: true, runAsUser: 1000 }), /set securityContext.allowPrivilegeEscalation: false/],
    [
      'may escalate privileges (true)',
      withApp({ securityContext: { allowPrivilegeEscalation: true } }, { runAsUser: 1000 }),
      /allowPrivilegeEscalation: false/,
    ],
    ['adds NET_ADMIN', withApp({ securityContext: { ...ok, capabilities: { add: ['NET_ADMIN'] } } }, { runAsUser: 1000 }), /adds capability NET_ADMIN/],
    ['is privileged', withApp({ securityContext: { ...ok, privileged: true } }, { runAsUser: 1000 }), /privileged: false/],
  ])('denies a pod whose container %s, naming it and what to set', (_what, pod, message) => {
    const { r } = run(pod);
    expect(r.injected).toBe(false);
    expect(r.denied).toMatch(/^thoughtgate: capture is on \(annotation thoughtgate.io\/capture=enabled\) but the pod could walk around it/);
    expect(r.denied).toMatch(message);
  });

  it('checks init containers too', () => {
    const pod = safe({ 'thoughtgate.io/capture': 'enabled' });
    pod.spec!.initContainers = [{ name: 'setup', image: 's', securityContext: { runAsUser: 0, allowPrivilegeEscalation: false } }];
    expect(run(pod).r.denied).toMatch(/container "setup": it runs as root/);
  });

  it('admits a safe pod, and with runAsNonRoot alone (the kubelet refuses UID 0)', () => {
    expect(run(safe({ 'thoughtgate.io/capture': 'enabled' })).r.denied).toBeUndefined();
    expect(run(withApp({ securityContext: ok }, { runAsNonRoot: true })).r.injected).toBe(true);
  });

  it('does not check pods that are not captured', () => {
    expect(run({ ...withApp({ securityContext: { runAsUser: 0 } }), metadata: { name: 'a' } }).r.injected).toBe(true);
  });

  it('admits with a warning and records the container under capture.allowBypassablePods', () => {
    const { r, pod } = run(withApp({ securityContext: { runAsUser: 0 } }), { settings: { ...settings, capture: { allowBypassablePods: true } } });
    expect(r.injected).toBe(true);
    expect(r.warnings.join()).toMatch(/could walk around capture \(capture.allowBypassablePods\): container "app": it runs as root/);
    expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!).bypassable).toEqual(['app']);
  });

  it('uses the configured sidecar UID', () => {
    const pod = withApp({ securityContext: { ...ok, runAsUser: 1000 } });
    expect(run(pod, { settings: { ...settings, runAsUser: 1000 } }).r.denied).toMatch(/UID 1000, the sidecar's/);
  });
});

describe('custody: Secrets the policies name', () => {
  const headers = (secret: string) => ({ Authorization: { valueFrom: { secretKeyRef: { name: secret, key: 'token' } }, prefix: 'Bearer ' } });
  const policies = [
    policy({ sources: [{ name: 'a', url: 'https://a/mcp', headers: { ...headers('a-token'), 'X-Plain': 'v' } }] }),
    policy({ podSelector: { matchLabels: { app: 'agent' } }, sources: [{ name: 'b', url: 'https://b/mcp', headers: headers('b-token') }] }),
    policy({ podSelector: { matchLabels: { app: 'other' } }, sources: [{ name: 'c', url: 'https://c/mcp', headers: headers('c-token') }] }),
  ];

  it('mounts each Secret of the selecting policies, read-only, into the sidecar container only', () => {
    const { pod } = run({ ...safe(), spec: { ...safe().spec!, initContainers: [{ name: 'migrate', image: 'm' }] } }, { policies });
    const sc = sidecarOf(pod);
    expect(sc.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: secretVolumeName('a-token'), mountPath: '/var/run/thoughtgate/secrets/a-token', readOnly: true },
        { name: secretVolumeName('b-token'), mountPath: '/var/run/thoughtgate/secrets/b-token', readOnly: true },
      ]),
    );
    expect(pod.spec!.volumes).toContainEqual({ name: secretVolumeName('a-token'), secret: { secretName: 'a-token', optional: true, defaultMode: 0o444 } });
    expect(pod.spec!.volumes!.filter((v) => v.secret).map((v) => v.secret!.secretName)).toEqual(['a-token', 'b-token']);
    for (const c of [...pod.spec!.containers!, ...init(pod).filter((c) => c.name !== 'thoughtgate')]) expect(c.volumeMounts ?? []).toEqual([]);
  });

  it('mounts them whether or not capture is on', () => {
    const { pod } = run(safe({ 'thoughtgate.io/capture': 'enabled' }), { policies });
    expect(sidecarOf(pod).volumeMounts!.filter((m) => m.mountPath.startsWith('/var/run/thoughtgate/secrets/'))).toHaveLength(2);
  });

  it('names volumes as short DNS labels that do not collide', () => {
    const long = `${'a'.repeat(250)}.b`;
    expect(secretVolumeName(long)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(secretVolumeName(long).length).toBeLessThanOrEqual(63);
    const names = new Set(Array.from({ length: 1000 }, (_, i) => secretVolumeName(`s-${i}`)));
    expect(names.size).toBe(1000);
  });

  it(`mounts at most ${MAX_SECRET_MOUNTS}, warning with the rest`, () => {
    const many = [
      policy({ sources: Array.from({ length: 40 }, (_, i) => ({ name: `s${i}`, url: 'https://x/', headers: headers(`t-${String(i).padStart(2, '0')}`) })) }),
    ];
    const { r, pod } = run(safe(), { policies: many });
    expect(pod.spec!.volumes!.filter((v) => v.secret)).toHaveLength(MAX_SECRET_MOUNTS);
    expect(r.warnings.join()).toMatch(/name 40 Secrets; only the first 32 .* sources using t-32, t-33, t-34, t-35, t-36, t-37, t-38, t-39 get no credential/);
  });

  it('reads policies defensively: odd shapes, bad names and unreadable URLs are skipped', () => {
    const odd = [
      null,
      'x',
      { spec: null },
      { spec: { sources: 'no' } },
      {
        spec: { sources: [null, { url: 7, headers: { A: 'plain', B: { valueFrom: { secretKeyRef: { name: '../etc' } } }, C: { valueFrom: { env: 'X' } } } }] },
      },
      { spec: { sources: [{ url: 'http://${HOST}:9000/' }, { url: 'http://h:${PORT}/' }, { url: 'http://ok:81/' }] } },
      { spec: { podSelector: 'nonsense', sources: [{ url: 'http://sel:82/' }] } },
    ];
    // A ${VAR} host still has a known port; a ${VAR} port is known only in the pod.
    expect(policyNeeds(odd, {})).toEqual({ httpPorts: [81, 82, 9000], secrets: [] });
  });
});
