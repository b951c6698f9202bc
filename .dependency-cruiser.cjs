// The layering rules, checked in CI (`make lint` → `npm run depcheck`). docs/architecture.md
// draws them. Lower layers never import upward, no deployable imports another, no cycles.
//
//   cmd/, cli.ts                      composition: flags → a running deployable
//   check/                            `thoughtgate check`: reads what the deployables install
//   sidecar/  operator/  webhook/     deployables (never each other)
//   policy/  kube/  slack/            libraries with a concern (config + gates 1–3, Kubernetes, Slack)
//   api/                              contracts: schemas, CRDs, error codes, well-known names
//   lib/                              helpers with no ThoughtGate concern
const PROD = '^(cli\\.ts|cmd|check|lib|api|policy|kube|slack|sidecar|operator|webhook)(/|$)';
const NOT_TEST = '\\.test\\.ts$';

/** `from` may only import from `allowed` among our own folders. */
const layer = (name, from, allowed) => {
  const all = ['cmd', 'check', 'lib', 'api', 'policy', 'kube', 'slack', 'sidecar', 'operator', 'webhook'];
  const banned = all.filter((d) => !allowed.includes(d) && !from.startsWith(d));
  return {
    name,
    severity: 'error',
    comment: `${from} may import only ${allowed.join(', ') || 'nothing of ours'}`,
    from: { path: `^${from}` },
    to: { path: `^(${banned.join('|')}|cli\\.ts)(/|$)` },
  };
};

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'import cycles make modules impossible to load or test alone', from: {}, to: { circular: true } },
    { name: 'no-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
    layer('lib-is-the-bottom', 'lib/', []),
    layer('api-only-lib', 'api/', ['lib']),
    layer('policy-below-deployables', 'policy/', ['lib', 'api']),
    layer('kube-below-deployables', 'kube/', ['lib', 'api']),
    layer('slack-below-deployables', 'slack/', ['lib', 'api']),
    layer('sidecar-is-a-deployable', 'sidecar/', ['lib', 'api', 'policy', 'kube', 'slack']),
    layer('operator-is-a-deployable', 'operator/', ['lib', 'api', 'policy', 'kube', 'slack']),
    layer('webhook-is-a-deployable', 'webhook/', ['lib', 'api', 'policy', 'kube', 'slack']),
    // Composition level, beside cmd/: it checks what the operator and the webhook install, so it
    // reads their names and pure helpers; only cli.ts imports it (lazily), never a deployable.
    // Its tests may also read cmd/ (to pin the operator's default names without loading it).
    { ...layer('check-is-composition', 'check/', ['lib', 'api', 'policy', 'kube', 'operator', 'webhook']), from: { path: '^check/', pathNot: NOT_TEST } },
    {
      name: 'production-code-not-tests',
      severity: 'error',
      comment: 'test fakes, e2e harnesses, benches and scripts never ship in a deployable',
      from: { path: PROD, pathNot: NOT_TEST },
      to: { path: '^(test|e2e|bench|scripts)/' },
    },
    {
      name: 'production-code-not-dev-dependencies',
      severity: 'error',
      from: { path: PROD, pathNot: NOT_TEST },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sidecar-without-client-node',
      severity: 'error',
      comment: 'the sidecar runs in every agent pod: @kubernetes/client-node is types-only there (docs/performance.md)',
      from: { path: '^(sidecar|kube|policy|lib|api)/' },
      to: { path: '@kubernetes/client-node', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|\\.dev)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
