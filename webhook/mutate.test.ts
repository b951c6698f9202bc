// The pod mutation over many pod shapes: each patch is applied with a strict RFC 6902 applier (as
// the apiserver would), the result is checked, and a second pass over the result must change nothing.
//
// Golden files (as linkerd2 keeps its injector's): for each pod of GOLDEN below, the exact result
// of mutatePod (patch, reason, warnings) is stored in webhook/testdata/<case>.json next to the
// input pod, and must match byte for byte. After an intended change to the mutation, rewrite them
// and review the diff:
//   UPDATE_GOLDEN=1 npm test -- webhook/mutate.test.ts
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyJsonPatch, JsonPatchError } from './jsonpatch.js';
import { DEFAULT_RESOURCES, mergeNoProxy, mutatePod, needsOwnToken, type Container, type InjectionSettings, type MutationInput, type Pod } from './mutate.js';
import { at } from '../test/support/at.js';

const settings: InjectionSettings = {
  image: 'ghcr.io/thoughtgate/thoughtgate:0.1.0',
  version: '0.1.0',
  operator: { namespace: 'thoughtgate-system', podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } } },
};
/** Every setting away from its default. */
const customSettings: InjectionSettings = {
  ...settings,
  containerName: 'tg',
  imagePullPolicy: 'Always',
  runAsUser: 1000,
  configMapName: 'cm',
  adminBind: '::',
  logLevel: 'debug',
  resources: { requests: { cpu: '10m', memory: '128Mi' }, limits: { memory: '256Mi' } },
};
const enabledNs = { name: 'agents', labels: { 'thoughtgate.io/inject': 'enabled', 'kubernetes.io/metadata.name': 'agents' } };
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function input(pod: Pod, over: Partial<MutationInput> = {}): MutationInput {
  return { pod, namespace: enabledNs, operation: 'CREATE', settings, ...over };
}

/** What the ServiceAccount admission plugin has done by the time the webhook sees a pod. */
function withServiceAccountPlugin(pod: Pod): Pod {
  const p = structuredClone(pod);
  p.spec!.serviceAccountName ??= 'default';
  if (p.spec!.automountServiceAccountToken === false) return p;
  p.spec!.volumes = [
    ...(p.spec!.volumes ?? []),
    {
      name: 'kube-api-access-x7k2p',
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        ],
      },
    },
  ];
  for (const c of [...(p.spec!.initContainers ?? []), ...p.spec!.containers!]) {
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'kube-api-access-x7k2p', mountPath: SA_DIR, readOnly: true }];
  }
  return p;
}

/** Mutates, applies, and proves idempotency; returns the patched pod. */
function inject(i: MutationInput): { pod: Pod; reason: string; warnings: string[] } {
  const before = structuredClone(i.pod);
  const r = mutatePod(i);
  expect(i.pod).toEqual(before); // pure: the input is never modified
  expect(r.injected).toBe(true);
  const pod = applyJsonPatch(i.pod, r.patch);
  const again = mutatePod({ ...i, pod });
  expect(again).toMatchObject({ patch: [], injected: false });
  return { pod, reason: r.reason, warnings: r.warnings };
}

function skipped(i: MutationInput): string {
  const r = mutatePod(i);
  expect(r.injected).toBe(false);
  expect(r.patch).toEqual([]);
  return r.reason;
}

const sidecarOf = (pod: Pod): Container => [...(pod.spec!.initContainers ?? []), ...pod.spec!.containers!].find((c) => c.name === 'thoughtgate')!;
const envOf = (c: Container): Record<string, unknown> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** list[i], or a failure naming the index (rather than a TypeError further on). */
const bare = (): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'agent' }, spec: { containers: [{ name: 'app', image: 'agent:1' }] } });
/** A pod that already has an annotation, a volume, env (its own THOUGHTGATE_URL among it) and an empty env. */
const withExistingEnvVolumesAnnotations = (): Pod => ({
  metadata: { name: 'a', annotations: { team: 'x' }, labels: { app: 'a' } },
  spec: {
    volumes: [{ name: 'data', emptyDir: {} }],
    containers: [
      {
        name: 'app',
        image: 'a',
        env: [
          { name: 'THOUGHTGATE_URL', value: 'http://127.0.0.1:9999' },
          { name: 'B', value: '2' },
        ],
      },
      { name: 'other', image: 'o', env: [] },
    ],
  },
});

describe('mutatePod: what gets injected', () => {
  it('injects a complete native sidecar into a bare pod (no labels, annotations, env, volumes, init containers)', () => {
    const { pod, reason } = inject(input(bare()));
    expect(reason).toMatch(/^injected native sidecar/);
    expect(pod.metadata!.annotations).toEqual({ 'thoughtgate.io/injected': '0.1.0' });
    expect(pod.spec!.initContainers).toHaveLength(1);
    const sc = pod.spec!.initContainers![0];
    expect(sc).toEqual({
      name: 'thoughtgate',
      image: 'ghcr.io/thoughtgate/thoughtgate:0.1.0',
      imagePullPolicy: 'IfNotPresent',
      restartPolicy: 'Always',
      args: ['sidecar'],
      env: [
        { name: 'THOUGHTGATE_CONFIGMAP', value: 'thoughtgate-config' },
        { name: 'THOUGHTGATE_BIND', value: '127.0.0.1' },
        { name: 'THOUGHTGATE_ADMIN_BIND', value: '0.0.0.0' },
        { name: 'THOUGHTGATE_PORT', value: '7467' },
        { name: 'THOUGHTGATE_ADMIN_PORT', value: '7469' },
        { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
        { name: 'SERVICE_ACCOUNT', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.serviceAccountName' } } },
        { name: 'THOUGHTGATE_LABELS_FILE', value: '/etc/podinfo/labels' },
        { name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' },
      ],
      ports: [
        { name: 'tg-proxy', containerPort: 7467, protocol: 'TCP' },
        { name: 'tg-admin', containerPort: 7469, protocol: 'TCP' },
      ],
      startupProbe: { httpGet: { path: '/health', port: 'tg-admin', scheme: 'HTTP' }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 30 },
      readinessProbe: {
        httpGet: { path: '/ready', port: 'tg-admin', scheme: 'HTTP' },
        periodSeconds: 5,
        timeoutSeconds: 1,
        failureThreshold: 2,
        successThreshold: 1,
      },
      livenessProbe: { httpGet: { path: '/health', port: 'tg-admin', scheme: 'HTTP' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
      resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '1', memory: '192Mi' } },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 7467,
        runAsGroup: 7467,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumeMounts: [
        { name: 'thoughtgate-podinfo', mountPath: '/etc/podinfo', readOnly: true },
        // No ServiceAccount token volume in the pod: the sidecar brings its own.
        { name: 'thoughtgate-token', mountPath: SA_DIR, readOnly: true },
      ],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    });
    expect(pod.spec!.volumes!.map((v) => v.name)).toEqual(['thoughtgate-podinfo', 'thoughtgate-token']);
    expect(pod.spec!.volumes![0]).toEqual({
      name: 'thoughtgate-podinfo',
      downwardAPI: { defaultMode: 0o444, items: [{ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } }] },
    });
    expect(pod.spec!.containers).toEqual([{ name: 'app', image: 'agent:1', env: [{ name: 'THOUGHTGATE_URL', value: 'http://127.0.0.1:7467' }] }]);
  });

  it("handles a Deployment-made pod: generateName and no name, labels, the ServiceAccount plugin's token volume", () => {
    const pod0 = withServiceAccountPlugin({
      metadata: {
        generateName: 'agent-7f9c6d-',
        labels: { app: 'agent', 'pod-template-hash': '7f9c6d' },
        annotations: { 'kubectl.kubernetes.io/restartedAt': 'x' },
      },
      spec: {
        containers: [
          { name: 'app', image: 'agent:1', env: [{ name: 'A', value: '1' }] },
          { name: 'helper', image: 'h:1' },
        ],
      },
    });
    const { pod, reason } = inject(input(pod0));
    expect(reason).toBe('injected native sidecar');
    expect(pod.metadata!.name).toBeUndefined();
    expect(pod.metadata!.annotations).toEqual({ 'kubectl.kubernetes.io/restartedAt': 'x', 'thoughtgate.io/injected': '0.1.0' });
    // The standard token is there (and the plugin's re-run mounts it into the sidecar): none of our own.
    expect(pod.spec!.volumes!.map((v) => v.name)).toEqual(['kube-api-access-x7k2p', 'thoughtgate-podinfo']);
    expect(sidecarOf(pod).volumeMounts).toEqual([{ name: 'thoughtgate-podinfo', mountPath: '/etc/podinfo', readOnly: true }]);
    expect(pod.spec!.containers!.map((c) => envOf(c))).toEqual([
      { A: '1', THOUGHTGATE_URL: 'http://127.0.0.1:7467' },
      { THOUGHTGATE_URL: 'http://127.0.0.1:7467' },
    ]);
  });

  it('puts the native sidecar first among existing init containers and leaves them alone', () => {
    const pod0 = bare();
    pod0.spec!.initContainers = [
      { name: 'migrate', image: 'm:1', env: [{ name: 'X', value: 'y' }] },
      { name: 'istio-proxy', image: 'p:1', restartPolicy: 'Always' },
    ];
    const { pod } = inject(input(withServiceAccountPlugin(pod0)));
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['thoughtgate', 'migrate', 'istio-proxy']);
    expect(envOf(at(pod.spec!.initContainers, 1))).toEqual({ X: 'y' });
    expect(at(pod.spec!.initContainers, 2).env).toBeUndefined();
    expect(envOf(at(pod.spec!.containers, 0))).toEqual({ THOUGHTGATE_URL: 'http://127.0.0.1:7467' });
  });

  it('keeps an existing THOUGHTGATE_URL and existing env, volumes and annotations', () => {
    const { pod } = inject(input(withServiceAccountPlugin(withExistingEnvVolumesAnnotations())));
    expect(envOf(at(pod.spec!.containers, 0))).toEqual({ THOUGHTGATE_URL: 'http://127.0.0.1:9999', B: '2' });
    expect(envOf(at(pod.spec!.containers, 1))).toEqual({ THOUGHTGATE_URL: 'http://127.0.0.1:7467' });
    expect(pod.spec!.volumes!.map((v) => v.name)).toEqual(['data', 'kube-api-access-x7k2p', 'thoughtgate-podinfo']);
    expect(pod.metadata!.annotations).toEqual({ team: 'x', 'thoughtgate.io/injected': '0.1.0' });
  });

  it('gives the sidecar (only) its own projected token when the pod has automountServiceAccountToken: false', () => {
    const pod0 = bare();
    pod0.spec!.automountServiceAccountToken = false;
    pod0.spec!.volumes = [{ name: 'cfg', configMap: { name: 'c' } }];
    const { pod, reason } = inject(input(withServiceAccountPlugin(pod0)));
    expect(reason).toContain('its own ServiceAccount token');
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.spec!.volumes!.find((v) => v.name === 'thoughtgate-token')).toEqual({
      name: 'thoughtgate-token',
      projected: {
        defaultMode: 0o444,
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    });
    expect(sidecarOf(pod).volumeMounts).toContainEqual({ name: 'thoughtgate-token', mountPath: SA_DIR, readOnly: true });
    expect(at(pod.spec!.containers, 0).volumeMounts).toBeUndefined();
  });

  it('also brings a token when the ServiceAccount (not the pod) turned automount off: no kube-api-access volume', () => {
    const pod0 = withServiceAccountPlugin(bare());
    expect(needsOwnToken(pod0)).toBe(false);
    const fromSaOff = bare();
    fromSaOff.spec!.serviceAccountName = 'locked-down';
    expect(needsOwnToken(fromSaOff)).toBe(true);
    expect(sidecarOf(inject(input(fromSaOff)).pod).volumeMounts!.map((m) => m.name)).toContain('thoughtgate-token');
  });

  it('with thoughtgate.io/forward-proxy: "true", points HTTP_PROXY at the sidecar and merges NO_PROXY', () => {
    const pod0: Pod = {
      metadata: { name: 'a', annotations: { 'thoughtgate.io/forward-proxy': 'true' } },
      spec: {
        containers: [
          {
            name: 'app',
            image: 'a',
            env: [
              { name: 'NO_PROXY', value: 'internal.example.com, 10.0.0.0/8,localhost' },
              { name: 'no_proxy', value: '.corp' },
              { name: 'HTTP_PROXY', value: 'http://corp-proxy:3128' },
            ],
          },
          { name: 'bare', image: 'b' },
        ],
      },
    };
    const { pod, reason } = inject(input(withServiceAccountPlugin(pod0)));
    expect(reason).toContain('forward proxy');
    const merged = 'internal.example.com,10.0.0.0/8,localhost,.corp,127.0.0.1,::1';
    expect(envOf(at(pod.spec!.containers, 0))).toEqual({
      NO_PROXY: merged,
      no_proxy: merged,
      HTTP_PROXY: 'http://127.0.0.1:7467',
      http_proxy: 'http://127.0.0.1:7467',
      THOUGHTGATE_URL: 'http://127.0.0.1:7467',
    });
    expect(envOf(at(pod.spec!.containers, 1))).toEqual({
      THOUGHTGATE_URL: 'http://127.0.0.1:7467',
      HTTP_PROXY: 'http://127.0.0.1:7467',
      http_proxy: 'http://127.0.0.1:7467',
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
    });
    // The sidecar itself never proxies through itself.
    expect(envOf(sidecarOf(pod))).not.toHaveProperty('HTTP_PROXY');
  });

  it('leaves a NO_PROXY from valueFrom alone and says so', () => {
    const pod0 = bare();
    pod0.metadata!.annotations = { 'thoughtgate.io/forward-proxy': 'true' };
    at(pod0.spec!.containers, 0).env = [{ name: 'NO_PROXY', valueFrom: { configMapKeyRef: { name: 'net', key: 'no_proxy' } } }];
    const { pod, warnings } = inject(input(pod0));
    expect(at(pod.spec!.containers, 0).env?.[0]).toEqual({ name: 'NO_PROXY', valueFrom: { configMapKeyRef: { name: 'net', key: 'no_proxy' } } });
    expect(envOf(at(pod.spec!.containers, 0)).no_proxy).toBe('localhost,127.0.0.1,::1');
    expect(warnings).toEqual([expect.stringContaining('NO_PROXY comes from valueFrom')]);
  });

  it('forward-proxy other than "true" changes nothing about proxies', () => {
    const pod0 = bare();
    pod0.metadata!.annotations = { 'thoughtgate.io/forward-proxy': 'false' };
    expect(envOf(at(inject(input(pod0)).pod.spec!.containers, 0))).toEqual({ THOUGHTGATE_URL: 'http://127.0.0.1:7467' });
  });

  it('classic mode appends a regular container and leaves init containers alone', () => {
    const pod0 = bare();
    pod0.spec!.initContainers = [{ name: 'init', image: 'i' }];
    const { pod, reason } = inject(input(withServiceAccountPlugin(pod0), { settings: { ...settings, mode: 'classic' } }));
    expect(reason).toMatch(/^injected classic sidecar/);
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['init']);
    expect(pod.spec!.containers!.map((c) => c.name)).toEqual(['app', 'thoughtgate']);
    expect(at(pod.spec!.containers, 1).restartPolicy).toBeUndefined();
    expect(envOf(at(pod.spec!.containers, 0)).THOUGHTGATE_URL).toBe('http://127.0.0.1:7467');
    expect(envOf(at(pod.spec!.containers, 1))).not.toHaveProperty('THOUGHTGATE_URL');
  });

  it('applies the settings: name, image policy, user, resources, ConfigMap, admin bind, log level', () => {
    const s = customSettings;
    const r = mutatePod(input(bare(), { settings: s }));
    const pod = applyJsonPatch(bare(), r.patch);
    const sc = at(pod.spec!.initContainers, 0);
    expect(sc).toMatchObject({ name: 'tg', imagePullPolicy: 'Always', resources: s.resources, securityContext: { runAsUser: 1000, runAsGroup: 1000 } });
    expect(envOf(sc)).toMatchObject({ THOUGHTGATE_CONFIGMAP: 'cm', THOUGHTGATE_ADMIN_BIND: '::', THOUGHTGATE_LOG_LEVEL: 'debug' });
    expect(mutatePod(input(pod, { settings: s })).patch).toEqual([]);
    expect(DEFAULT_RESOURCES.limits!.memory).toBe('192Mi'); // the settings' copy did not leak into the defaults
  });

  it('escapes "/" in annotation keys as ~1 (RFC 6901)', () => {
    const pod0 = bare();
    pod0.metadata!.annotations = {};
    const r = mutatePod(input(pod0));
    expect(r.patch).toContainEqual({ op: 'add', path: '/metadata/annotations/thoughtgate.io~1injected', value: '0.1.0' });
  });

  it('creates metadata when a pod arrives without it', () => {
    const pod0: Pod = { spec: { containers: [{ name: 'app' }] } };
    expect(inject(input(pod0)).pod.metadata).toEqual({ annotations: { 'thoughtgate.io/injected': '0.1.0' }, labels: { 'thoughtgate.io/sidecar': 'injected' } });
  });
});

describe('mutatePod: what is left alone', () => {
  it('skips UPDATE and other operations', () => {
    expect(skipped(input(bare(), { operation: 'UPDATE' }))).toBe('operation UPDATE (only CREATE injects)');
    expect(skipped(input(bare(), { operation: 'DELETE' }))).toMatch(/DELETE/);
  });

  it('never injects in system namespaces, even labelled; the list is configurable', () => {
    const labels = { 'thoughtgate.io/inject': 'enabled' };
    for (const name of ['kube-system', 'kube-public', 'kube-node-lease']) {
      expect(skipped(input(bare(), { namespace: { name, labels } }))).toBe(`namespace ${name} is excluded`);
    }
    const s = { ...settings, excludedNamespaces: ['kube-system', 'monitoring'] };
    expect(skipped(input(bare(), { namespace: { name: 'monitoring', labels }, settings: s }))).toMatch(/excluded/);
    expect(mutatePod(input(bare(), { namespace: { name: 'kube-public', labels }, settings: s })).injected).toBe(true);
  });

  it('skips namespaces that are not labelled thoughtgate.io/inject=enabled', () => {
    expect(skipped(input(bare(), { namespace: { name: 'plain', labels: {} } }))).toMatch(/not labelled thoughtgate.io\/inject=enabled/);
    expect(skipped(input(bare(), { namespace: { name: 'off', labels: { 'thoughtgate.io/inject': 'disabled' } } }))).toMatch(/not labelled/);
    expect(skipped(input(bare(), { namespace: { name: 'typo', labels: { 'thoughtgate.io/inject': 'Enabled' } } }))).toMatch(/not labelled/);
  });

  it("never injects the operator's own pods", () => {
    const op = (labels: Record<string, string>): Pod => ({ ...bare(), metadata: { generateName: 'thoughtgate-operator-', labels } });
    const opNs = { name: 'thoughtgate-system', labels: { 'thoughtgate.io/inject': 'enabled' } };
    expect(skipped(input(op({ 'app.kubernetes.io/component': 'operator' }), { namespace: opNs }))).toMatch(/operator selector/);
    // The selector is scoped to the operator's namespace...
    expect(mutatePod(input(op({ 'app.kubernetes.io/component': 'operator' }))).injected).toBe(true);
    // ...the chart's labels are not.
    expect(skipped(input(op({ 'app.kubernetes.io/managed-by': 'thoughtgate-operator' })))).toMatch(/label app.kubernetes.io\/managed-by=thoughtgate-operator/);
    expect(skipped(input(op({ 'app.kubernetes.io/name': 'thoughtgate' })))).toMatch(/label app.kubernetes.io\/name=thoughtgate/);
  });

  it('honours a pod opt-out by label or by annotation', () => {
    const byLabel = bare();
    byLabel.metadata!.labels = { 'thoughtgate.io/inject': 'disabled' };
    expect(skipped(input(byLabel))).toBe('opted out (label thoughtgate.io/inject=disabled)');
    const byAnnotation = bare();
    byAnnotation.metadata!.annotations = { 'thoughtgate.io/inject': 'disabled' };
    expect(skipped(input(byAnnotation))).toBe('opted out (annotation thoughtgate.io/inject=disabled)');
    const other = bare();
    other.metadata!.annotations = { 'thoughtgate.io/inject': 'enabled' };
    expect(mutatePod(input(other)).injected).toBe(true);
  });

  it('does not inject twice: the annotation, or a container of that name anywhere', () => {
    const annotated = bare();
    annotated.metadata!.annotations = { 'thoughtgate.io/injected': '' };
    expect(skipped(input(annotated))).toMatch(/already injected \(annotation/);
    const asContainer = bare();
    asContainer.spec!.containers!.push({ name: 'thoughtgate', image: 'x' });
    expect(skipped(input(asContainer))).toBe('already injected (a container named thoughtgate exists)');
    const asInit = bare();
    asInit.spec!.initContainers = [{ name: 'thoughtgate', image: 'x', restartPolicy: 'Always' }];
    expect(skipped(input(asInit))).toMatch(/container named thoughtgate/);
    // The injected pod of one settings is also injected for another mode.
    const injected = applyJsonPatch(bare(), mutatePod(input(bare())).patch);
    expect(skipped(input(injected, { settings: { ...settings, mode: 'classic' } }))).toMatch(/already injected/);
  });

  it('refuses unsupported pods with a warning for the user', () => {
    const host = bare();
    host.spec!.hostNetwork = true;
    const r = mutatePod(input(host));
    expect(r).toMatchObject({ injected: false, patch: [], reason: 'hostNetwork pod' });
    expect(r.warnings[0]).toMatch(/hostNetwork/);
    const win = bare();
    win.spec!.os = { name: 'windows' };
    expect(mutatePod(input(win)).warnings[0]).toMatch(/Linux-only/);
    const clash = bare();
    clash.spec!.volumes = [{ name: 'thoughtgate-podinfo', emptyDir: {} }];
    expect(skipped(input(clash))).toMatch(/volume thoughtgate-podinfo already exists/);
    expect(skipped(input({ metadata: { name: 'x' }, spec: { containers: [] } }))).toMatch(/no containers/);
  });
});

describe('mergeNoProxy', () => {
  it('keeps existing entries in order, drops duplicates (case-insensitively) and adds loopback', () => {
    expect(mergeNoProxy(undefined, undefined)).toBe('localhost,127.0.0.1,::1');
    expect(mergeNoProxy('a.com,,LOCALHOST', ' b.com , a.com')).toBe('a.com,LOCALHOST,b.com,127.0.0.1,::1');
  });
});

describe('applyJsonPatch (the strict test applier)', () => {
  it('fails like the apiserver on add into a missing parent, bad indices and failed tests', () => {
    expect(() => applyJsonPatch({ a: {} }, [{ op: 'add', path: '/b/c', value: 1 }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch({ a: [1] }, [{ op: 'add', path: '/a/2', value: 1 }])).toThrow(/out of range/);
    expect(() => applyJsonPatch({ a: [1] }, [{ op: 'replace', path: '/a/1', value: 1 }])).toThrow(/out of range/);
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).toThrow(/test failed/);
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '/b', value: 2 }])).toThrow(/no value/);
  });

  it('adds, inserts, appends, replaces, removes, moves and unescapes ~0 ~1', () => {
    const doc = { a: [1, 3], m: { 'x/y': 1, 'p~q': 2 } };
    const out = applyJsonPatch(doc, [
      { op: 'add', path: '/a/1', value: 2 },
      { op: 'add', path: '/a/-', value: 4 },
      { op: 'replace', path: '/m/x~1y', value: 'r' },
      { op: 'remove', path: '/m/p~0q' },
      { op: 'test', path: '/a', value: [1, 2, 3, 4] },
      { op: 'move', from: '/m/x~1y', path: '/moved' },
      { op: 'copy', from: '/a/0', path: '/first' },
    ]);
    expect(out).toEqual({ a: [1, 2, 3, 4], m: {}, moved: 'r', first: 1 });
    expect(doc).toEqual({ a: [1, 3], m: { 'x/y': 1, 'p~q': 2 } });
  });
});

// ---------- golden files ----------

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

/** Representative pods, as the webhook sees them (after the built-in admission plugins). */
const GOLDEN: Record<string, () => MutationInput> = {
  'bare-pod-own-token': () => input(bare()),
  'deployment-pod': () =>
    input(
      withServiceAccountPlugin({
        metadata: { generateName: 'agent-7f9c6d-', labels: { app: 'agent', 'pod-template-hash': '7f9c6d' } },
        spec: {
          containers: [
            { name: 'app', image: 'agent:1' },
            { name: 'helper', image: 'h:1' },
          ],
        },
      }),
    ),
  'existing-init-containers': () =>
    input(
      withServiceAccountPlugin({
        ...bare(),
        spec: {
          initContainers: [
            { name: 'migrate', image: 'm:1' },
            { name: 'istio-proxy', image: 'p:1', restartPolicy: 'Always' },
          ],
          containers: [{ name: 'app', image: 'agent:1' }],
        },
      }),
    ),
  'existing-env-volumes-annotations': () => input(withServiceAccountPlugin(withExistingEnvVolumesAnnotations())),
  'automount-off': () =>
    input(
      withServiceAccountPlugin({
        ...bare(),
        spec: { automountServiceAccountToken: false, volumes: [{ name: 'cfg', configMap: { name: 'c' } }], containers: [{ name: 'app', image: 'agent:1' }] },
      }),
    ),
  'forward-proxy': () =>
    input(
      withServiceAccountPlugin({
        metadata: { name: 'a', annotations: { 'thoughtgate.io/forward-proxy': 'true' } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'a',
              env: [
                { name: 'NO_PROXY', value: 'internal.example.com' },
                { name: 'HTTP_PROXY', value: 'http://corp-proxy:3128' },
              ],
            },
          ],
        },
      }),
    ),
  'forward-proxy-no-proxy-from-configmap': () =>
    input({
      metadata: { name: 'a', annotations: { 'thoughtgate.io/forward-proxy': 'true' } },
      spec: { containers: [{ name: 'app', image: 'a', env: [{ name: 'NO_PROXY', valueFrom: { configMapKeyRef: { name: 'net', key: 'no_proxy' } } }] }] },
    }),
  'classic-mode': () =>
    input(withServiceAccountPlugin({ ...bare(), spec: { initContainers: [{ name: 'init', image: 'i' }], containers: [{ name: 'app', image: 'agent:1' }] } }), {
      settings: { ...settings, mode: 'classic' },
    }),
  'custom-settings': () => input(withServiceAccountPlugin(bare()), { settings: customSettings }),
  'opt-out-annotation': () => input({ ...bare(), metadata: { name: 'agent', annotations: { 'thoughtgate.io/inject': 'disabled' } } }),
  'opt-out-label': () => input({ ...bare(), metadata: { name: 'agent', labels: { 'thoughtgate.io/inject': 'disabled' } } }),
  'already-injected': () => input({ ...bare(), metadata: { name: 'agent', annotations: { 'thoughtgate.io/injected': '0.0.9' } } }),
  'host-network': () => input({ ...bare(), spec: { hostNetwork: true, containers: [{ name: 'app', image: 'agent:1' }] } }),
  'namespace-not-labelled': () => input(bare(), { namespace: { name: 'plain', labels: {} } }),
  // Capture and custody (webhook/capture.test.ts has the cases one by one).
  'captured-with-secrets': () =>
    input(
      withServiceAccountPlugin({
        metadata: {
          name: 'agent',
          labels: { app: 'agent' },
          annotations: { 'thoughtgate.io/capture': 'enabled', 'thoughtgate.io/capture-tls': 'passthrough' },
        },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          initContainers: [{ name: 'migrate', image: 'm:1', securityContext: { allowPrivilegeEscalation: false } }],
          containers: [{ name: 'app', image: 'agent:1', securityContext: { allowPrivilegeEscalation: false } }],
        },
      }),
      {
        policies: [
          {
            metadata: { name: 'p', namespace: 'agents' },
            spec: {
              sources: [
                {
                  name: 'a',
                  url: 'http://mcp.internal:8080/mcp',
                  headers: { Authorization: { valueFrom: { secretKeyRef: { name: 'a-token', key: 'token' } } } },
                },
              ],
            },
          },
        ],
      },
    ),
  'captured-bypassable-denied': () => input({ ...bare(), metadata: { name: 'agent', annotations: { 'thoughtgate.io/capture': 'enabled' } } }),
  'captured-host-network-denied': () =>
    input(
      { ...bare(), spec: { hostNetwork: true, containers: [{ name: 'app', image: 'agent:1' }] } },
      { namespace: { name: 'agents', labels: { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'enabled' } } },
    ),
  'capture-required-opt-out-denied': () =>
    input(
      { ...bare(), metadata: { name: 'agent', labels: { 'thoughtgate.io/inject': 'disabled' } } },
      { namespace: { name: 'agents', labels: { 'thoughtgate.io/inject': 'enabled', 'thoughtgate.io/capture': 'required' } } },
    ),
};

describe('mutatePod: golden patches (webhook/testdata; UPDATE_GOLDEN=1 rewrites them)', () => {
  beforeAll(() => {
    if (UPDATE_GOLDEN) mkdirSync(TESTDATA, { recursive: true });
  });

  it.each(Object.keys(GOLDEN))('%s', (name) => {
    const i = GOLDEN[name]!(); // name is one of GOLDEN's keys
    const r = mutatePod(i);
    // A golden patch must also apply, strictly, as the apiserver would.
    applyJsonPatch(i.pod, r.patch);
    const text = `${JSON.stringify({ pod: i.pod, result: r }, null, 2)}\n`;
    const file = join(TESTDATA, `${name}.json`);
    if (UPDATE_GOLDEN) writeFileSync(file, text);
    else if (!existsSync(file)) throw new Error(`${file} is missing; create it with UPDATE_GOLDEN=1 and review it`);
    expect(text).toBe(readFileSync(file, 'utf8'));
  });

  it('has no golden file without a case (a renamed or removed case leaves none behind)', () => {
    const files = existsSync(TESTDATA) ? readdirSync(TESTDATA) : [];
    expect(files.sort()).toEqual(
      Object.keys(GOLDEN)
        .map((n) => `${n}.json`)
        .sort(),
    );
  });
});
