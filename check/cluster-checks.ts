// The API server and the CustomResourceDefinitions: shared by the pre- and post-install checks.
import { KINDS } from '../api/crds.js';
import { GROUP, VERSION } from '../api/wellknown.js';
import type { CheckResult, Crd, Read, VersionInfo } from './model.js';
import { readFailure } from './read.js';

/**
 * The oldest Kubernetes the project supports (charts/thoughtgate/Chart.yaml kubeVersion): the
 * ApprovalDecision identity check is a ValidatingAdmissionPolicy, admissionregistration.k8s.io/v1
 * from 1.30 (the chart ships it); native sidecars (init containers with restartPolicy: Always),
 * which the webhook injects by default, are on by default from 1.29.
 */
export const MIN_KUBERNETES = { major: 1, minor: 30 } as const;

/** What the floor is for, in the check's messages. */
const NEEDS = 'ValidatingAdmissionPolicy v1 (the ApprovalDecision identity check) and native sidecars';

/** The CRDs of this build (api/crds.ts; crds/ is generated from it): name, kind, the version served and stored. */
export const EXPECTED_CRDS = Object.values(KINDS).map((k) => ({ name: `${k.plural}.${GROUP}`, kind: k.kind, version: VERSION }));

export function parseVersion(v: VersionInfo): { major: number; minor: number } | null {
  const m = /^v?(\d+)\.(\d+)/.exec(v.gitVersion ?? '');
  if (m) return { major: Number(m[1]), minor: Number(m[2]) };
  // Some providers say minor "29+".
  const major = Number.parseInt(v.major, 10);
  const minor = Number.parseInt(v.minor, 10);
  return Number.isFinite(major) && Number.isFinite(minor) ? { major, minor } : null;
}

export function checkVersion(version: Read<VersionInfo>): CheckResult {
  const id = 'kubernetes/version';
  const group = 'kubernetes-api';
  if (!version.ok) return readFailure(id, group, 'the server version (/version)', version);
  const v = parseVersion(version.value);
  const min = `${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor}`;
  if (!v)
    return {
      id,
      group,
      status: 'warn',
      message: `cannot tell the server version from "${version.value.gitVersion}"`,
      hint: `ThoughtGate needs Kubernetes ${min} or later`,
    };
  const ok = v.major > MIN_KUBERNETES.major || (v.major === MIN_KUBERNETES.major && v.minor >= MIN_KUBERNETES.minor);
  return ok
    ? { id, group, status: 'ok', message: `Kubernetes ${version.value.gitVersion} serves ${NEEDS} (ThoughtGate needs ${min} or later)` }
    : {
        id,
        group,
        status: 'fail',
        message: `Kubernetes ${version.value.gitVersion} is older than ${min}, which ThoughtGate needs for ${NEEDS}`,
        hint: `upgrade the cluster to ${min} or later (the chart's kubeVersion refuses to install on older ones)`,
      };
}

const established = (c: Crd) => c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ?? false;

/** Post-install: every CRD of this build present, Established, its version served and stored. */
export function checkCrds(crds: Read<Crd[]>): CheckResult[] {
  const group = 'crds';
  if (!crds.ok) return [readFailure('crds', group, 'CustomResourceDefinitions', crds)];
  const apply = 'kubectl apply --server-side -f crds/ (from this release), or helm upgrade';
  return EXPECTED_CRDS.map((e): CheckResult => {
    const id = `crds/${e.name}`;
    const crd = crds.value.find((c) => c.metadata.name === e.name);
    if (!crd) return { id, group, status: 'fail', message: `CRD ${e.name} is missing`, hint: apply };
    const v = crd.spec?.versions?.find((x) => x.name === e.version);
    if (!v) return { id, group, status: 'fail', message: `CRD ${e.name} has no version ${e.version}`, hint: apply };
    if (!v.served) return { id, group, status: 'fail', message: `CRD ${e.name}: version ${e.version} is not served`, hint: apply };
    if (!v.storage) {
      const stored = crd.spec?.versions?.find((x) => x.storage)?.name ?? 'none';
      return { id, group, status: 'fail', message: `CRD ${e.name}: ${e.version} is not the storage version (${stored} is)`, hint: apply };
    }
    if (!established(crd)) return { id, group, status: 'fail', message: `CRD ${e.name} is not Established`, hint: `kubectl describe crd ${e.name}` };
    return { id, group, status: 'ok', message: `${e.kind} ${e.version} served and stored` };
  });
}

/** Pre-install: a CRD already present must serve and store this build's version (else the chart's would be refused or skipped). */
export function checkCrdsPre(crds: Read<Crd[]>): CheckResult[] {
  const group = 'crds';
  if (!crds.ok) return [readFailure('crds', group, 'CustomResourceDefinitions', crds)];
  return EXPECTED_CRDS.map((e): CheckResult => {
    const id = `crds/${e.name}`;
    const crd = crds.value.find((c) => c.metadata.name === e.name);
    if (!crd) return { id, group, status: 'ok', message: `CRD ${e.name} not present yet` };
    const v = crd.spec?.versions?.find((x) => x.name === e.version);
    if (v?.served && v.storage) return { id, group, status: 'ok', message: `CRD ${e.name} already present at ${e.version} (compatible)` };
    const have =
      (crd.spec?.versions ?? []).map((x) => `${x.name}${x.storage ? ' (stored)' : ''}${x.served ? '' : ' (not served)'}`).join(', ') || 'no versions';
    return {
      id,
      group,
      status: 'fail',
      message: `CRD ${e.name} is present at an incompatible version: ${have}; this release needs ${e.version} served and stored`,
      hint: `remove the old CRD (kubectl delete crd ${e.name}: deletes its objects) or install the release that matches it`,
    };
  });
}
