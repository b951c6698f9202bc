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

describe('a pod capture is on for but that cannot be captured is denied, not admitted uncaptured', () => {
  const host = (annotations: Record<string, string> = {}): Pod => ({ ...safe(annotations), spec: { ...safe().spec!, hostNetwork: true } });

  it.each([
    ['the pod annotation', host({ 'thoughtgate.io/capture': 'enabled' }), {}],
    ['the namespace label', host(), { namespace: ns({ 'thoughtgate.io/capture': 'enabled' }) }],
    ['the chart default', host(), { settings: { ...settings, capture: { enabled: true } } }],
  ])('hostNetwork, capture on by %s', (_what, pod, over) => {
    const { r } = run(pod, over);
    expect(r.injected).toBe(false);
    expect(r.denied).toMatch(
      /^thoughtgate: capture is on \(.*\) but the pod cannot be captured: hostNetwork pod\. Set spec.hostNetwork: false, or opt the pod out/,
    );
  });

  it('hostNetwork without capture, or opted out of it, or under capture.allowBypassablePods: admitted uninjected with a warning, as before', () => {
    for (const [pod, over] of [
      [host(), {}],
      [host({ 'thoughtgate.io/capture': 'disabled' }), { namespace: ns({ 'thoughtgate.io/capture': 'enabled' }) }],
      [host({ 'thoughtgate.io/capture': 'enabled' }), { settings: { ...settings, capture: { allowBypassablePods: true } } }],
    ] as const) {
      const { r } = run(pod, over);
      expect(r).toMatchObject({ injected: false, patch: [], reason: 'hostNetwork pod' });
      expect(r.denied).toBeUndefined();
      expect(r.warnings[0]).toMatch(/hostNetwork: true are not supported/);
    }
  });

  it('refuses a user container named like the capture init container, and volumes named like ours', () => {
    const named = safe();
    named.spec!.initContainers = [{ name: 'thoughtgate-capture', image: 'fake', securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false } }];
    const off = run(named).r;
    expect(off).toMatchObject({ injected: false, reason: 'container thoughtgate-capture already exists' });
    expect(off.warnings[0]).toMatch(/already has a container named thoughtgate-capture .*rename it/);
    named.metadata!.annotations = { 'thoughtgate.io/capture': 'enabled' };
    expect(run(named).r.denied).toMatch(/cannot be captured: container thoughtgate-capture already exists/);
    for (const volume of ['thoughtgate-capture', 'thoughtgate-token', 'tg-secret-0123456789abcdef']) {
      const pod = safe();
      pod.spec!.volumes = [{ name: volume, emptyDir: {} }];
      expect(run(pod).r).toMatchObject({ injected: false, reason: `volume ${volume} already exists` });
    }
  });
});

describe('namespace label thoughtgate.io/capture=required', () => {
  const required = ns({ 'thoughtgate.io/capture': 'required' });

  it('captures every pod, whatever the chart default', () => {
    const { r, pod } = run(safe(), { namespace: required, settings: { ...settings, capture: { enabled: false } } });
    expect(r.reason).toMatch(/captured \(namespace label thoughtgate.io\/capture=required\)/);
    expect(captureOf(pod)).toBeDefined();
    expect(run(safe({ 'thoughtgate.io/capture': 'enabled' }), { namespace: required }).r.injected).toBe(true);
  });

  it.each([
    [
      'opts out of capture',
      safe({ 'thoughtgate.io/capture': 'disabled' }),
      /cannot opt out with annotation thoughtgate.io\/capture: disabled; remove the annotation/,
    ],
    [
      'opts out of injection (annotation)',
      safe({ 'thoughtgate.io/inject': 'disabled' }),
      /would run uncaptured: opted out \(annotation thoughtgate.io\/inject=disabled\)/,
    ],
    [
      'opts out of injection (label)',
      safe({}, { 'thoughtgate.io/inject': 'disabled' }),
      /would run uncaptured: opted out \(label thoughtgate.io\/inject=disabled\)/,
    ],
    [
      'claims to be the operator',
      safe({}, { 'app.kubernetes.io/name': 'thoughtgate' }),
      /would run uncaptured: the operator's own pod \(label app.kubernetes.io\/name=thoughtgate\)/,
    ],
    ['claims to be injected already', safe({ 'thoughtgate.io/injected': '0.1.0' }), /would run uncaptured: already injected/],
    ['is hostNetwork', { ...safe(), spec: { ...safe().spec!, hostNetwork: true } } as Pod, /would run uncaptured: hostNetwork pod/],
  ])('denies a pod that %s', (_what, pod, message) => {
    const { r } = run(pod, { namespace: required });
    expect(r.injected).toBe(false);
    expect(r.patch).toEqual([]);
    expect(r.denied).toMatch(/^thoughtgate: namespace agents is labelled thoughtgate.io\/capture=required/);
    expect(r.denied).toMatch(message);
  });

  it('denies hostNetwork even under capture.allowBypassablePods: such a pod is not captured at all', () => {
    const pod = { ...safe(), spec: { ...safe().spec!, hostNetwork: true } } as Pod;
    expect(run(pod, { namespace: required, settings: { ...settings, capture: { allowBypassablePods: true } } }).r.denied).toMatch(/hostNetwork/);
  });

  it('still checks for ways around capture, and still rejects an invalid annotation', () => {
    expect(run({ ...safe(), spec: { containers: [{ name: 'app', image: 'a' }] } }, { namespace: required }).r.denied).toMatch(/could walk around it/);
    expect(run(safe({ 'thoughtgate.io/capture': 'yes' }), { namespace: required }).r.denied).toMatch(/"yes" is not enabled or disabled/);
  });

  it('leaves what is not an injection candidate alone: another operation, an excluded namespace, a namespace not labelled for injection', () => {
    expect(run(safe(), { namespace: required, operation: 'UPDATE' }).r.denied).toBeUndefined();
    expect(run(safe(), { namespace: { name: 'kube-system', labels: required.labels } }).r.denied).toBeUndefined();
    expect(run(safe(), { namespace: { name: 'agents', labels: { 'thoughtgate.io/capture': 'required' } } }).r.denied).toBeUndefined();
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
  const withApp = (
    app: Partial<Container>,
    podSc: Pod['spec'] extends infer S ? (S extends { securityContext?: infer P } ? P : never) : never = {},
    podSpec: Partial<NonNullable<Pod['spec']>> = {},
  ) =>
    ({
      metadata: { name: 'agent', annotations: { 'thoughtgate.io/capture': 'enabled' } },
      spec: { ...podSpec, securityContext: podSc, containers: [{ name: 'app', image: 'a', ...app }] },
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
    [
      'has no runAsUser and no runAsNonRoot',
      withApp({ securityContext: ok }),
      /it has no runAsUser, so its image's USER decides the UID .*set securityContext.runAsUser \(container or pod\) to a UID other than 0 and 7467/,
    ],
    // runAsNonRoot only stops UID 0: an image built `USER 7467` (ThoughtGate's own) would run exempt.
    ['has runAsNonRoot but no runAsUser', withApp({ securityContext: { ...ok, runAsNonRoot: true } }, { runAsNonRoot: true }), /it has no runAsUser/],
    ['may escalate privileges (unset)', withApp({}, { runAsNonRoot: true, runAsUser: 1000 }), /set securityContext.allowPrivilegeEscalation: false/],
    [
      'may escalate privileges (true)',
      withApp({ securityContext: { allowPrivilegeEscalation: true } }, { runAsUser: 1000 }),
      /allowPrivilegeEscalation: false/,
    ],
    ['adds NET_ADMIN', withApp({ securityContext: { ...ok, capabilities: { add: ['NET_ADMIN'] } } }, { runAsUser: 1000 }), /adds capability NET_ADMIN/],
    // The runtime reads capability names case-insensitively, with or without CAP_.
    [
      'adds cap_net_admin (lower case, CAP_ prefix)',
      withApp({ securityContext: { ...ok, capabilities: { add: ['cap_net_admin'] } } }, { runAsUser: 1000 }),
      /adds capability cap_net_admin/,
    ],
    ['adds Sys_Ptrace', withApp({ securityContext: { ...ok, capabilities: { add: ['Sys_Ptrace'] } } }, { runAsUser: 1000 }), /adds capability Sys_Ptrace/],
    [
      'is in the node\u2019s PID namespace',
      withApp({ securityContext: ok }, { runAsUser: 1000 }, { hostPID: true }),
      /the pod: it shares the node's PID namespace: set spec.hostPID: false/,
    ],
    [
      'is in the node\u2019s IPC namespace',
      withApp({ securityContext: ok }, { runAsUser: 1000 }, { hostIPC: true }),
      /the pod: it shares the node's IPC namespace: set spec.hostIPC: false/,
    ],
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

  it('admits a safe pod: runAsUser from the container or the pod', () => {
    expect(run(safe({ 'thoughtgate.io/capture': 'enabled' })).r.denied).toBeUndefined();
    expect(run(withApp({ securityContext: { ...ok, runAsUser: 1000 } })).r.injected).toBe(true);
    expect(run(withApp({ securityContext: ok }, { runAsUser: 1000 })).r.injected).toBe(true);
  });

  it('leaves runAsGroup alone: the rules match the owner by UID, so the sidecar’s GID is captured like any other', () => {
    expect(run(withApp({ securityContext: { ...ok, runAsUser: 1000, runAsGroup: 7467 } })).r.injected).toBe(true);
  });

  it('admits capabilities that cannot walk around capture, and drops', () => {
    const caps = { add: ['NET_BIND_SERVICE', 'chown', 'CAP_KILL'], drop: ['ALL', 'NET_ADMIN'] };
    expect(run(withApp({ securityContext: { ...ok, runAsUser: 1000, capabilities: caps } })).r.injected).toBe(true);
  });

  it.each(['ALL', 'NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'SETUID', 'SETGID', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'DAC_OVERRIDE', 'SYS_MODULE', 'BPF', 'PERFMON'])(
    'treats capability %s as a way around capture, in any spelling',
    (cap) => {
      for (const spelled of [cap, cap.toLowerCase(), `CAP_${cap}`, `cap_${cap.toLowerCase()}`]) {
        const pod = withApp({ securityContext: { ...ok, runAsUser: 1000, capabilities: { add: [spelled] } } });
        expect(run(pod).r.denied).toContain(`adds capability ${spelled}`);
      }
    },
  );

  it('admits hostPID under capture.allowBypassablePods, recording the pod', () => {
    const { r, pod } = run(withApp({ securityContext: { ...ok, runAsUser: 1000 } }, {}, { hostPID: true }), {
      settings: { ...settings, capture: { allowBypassablePods: true } },
    });
    expect(r.injected).toBe(true);
    expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!).bypassable).toEqual(['(pod)']);
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

  it('counts A2A agents (protocol: a2a) like MCP sources: their http ports are captured, their Secrets mounted', () => {
    const a2a = (name: string, url: string, secret: string) => ({ name, protocol: 'a2a', url, a2a: { jsonrpc: '/a2a/jsonrpc' }, headers: headers(secret) });
    const agents = [
      policy({
        sources: [
          a2a('billing', 'http://billing.agents:8080', 'billing-token'),
          a2a('search', 'http://search.agents', 'search-token'),
          a2a('secure', 'https://secure:8443', 's-token'),
        ],
      }),
    ];
    expect(policyNeeds(agents, {})).toEqual({ httpPorts: [80, 8080], secrets: ['billing-token', 's-token', 'search-token'] });
    const { pod } = run(safe({ 'thoughtgate.io/capture': 'enabled' }), { policies: agents });
    expect(JSON.parse(pod.metadata!.annotations!['thoughtgate.io/captured']!)).toMatchObject({ ports: [80, 8080] });
    const args = captureOf(pod)!.args!;
    expect(args.slice(args.indexOf('--redirect-ports'), args.indexOf('--redirect-ports') + 2)).toEqual(['--redirect-ports', '80,8080']);
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
