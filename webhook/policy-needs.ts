// What the GovernancePolicies selecting a pod need from its spec: the plain-HTTP ports of their
// sources (capture redirects them to the sidecar) and the Secrets their headers name (mounted into
// the sidecar container alone). Read defensively from the raw objects: the webhook must not fail a
// pod because one policy is invalid (the operator reports that in the policy's status).
import { SECRET_NAME, SECRET_NAME_MAX } from '../api/config.js';
import { matchesSelector, type LabelSelector } from '../api/k8s.js';

export interface PolicyNeeds {
  /** Ports of the sources' http:// URLs (80 when none is written), sorted: MCP servers and A2A agents alike (the sidecar routes both). */
  httpPorts: number[];
  /** Names of the Secrets named by secretKeyRef header values and OAuth client secrets, sorted. */
  secrets: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function selects(spec: Record<string, unknown>, labels: Readonly<Record<string, string>>): boolean {
  try {
    return matchesSelector(spec.podSelector as LabelSelector | undefined, labels);
  } catch {
    // A selector we cannot read: count the policy in. More ports or one more Secret in the sidecar
    // costs little; a missing credential or an uncaptured port is a failure the user cannot see.
    return true;
  }
}

/** The port of an http:// URL (80 when none is written); null for https or what is not a URL. */
function httpPort(url: unknown): number | null {
  if (typeof url !== 'string') return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' ? (u.port ? Number(u.port) : 80) : null;
  } catch {
    // Not a URL (e.g. a ${VAR} port, known only in the pod): no port to know here.
    return null;
  }
}

/** The Secret a header value names (secretKeyRef), if it is one and its name is valid. */
function secretOf(value: unknown): string | null {
  const ref = isObject(value) && isObject(value.valueFrom) && isObject(value.valueFrom.secretKeyRef) ? value.valueFrom.secretKeyRef : undefined;
  const name = ref?.name;
  return typeof name === 'string' && name.length <= SECRET_NAME_MAX && SECRET_NAME.test(name) ? name : null;
}

export function policyNeeds(policies: readonly unknown[], podLabels: Readonly<Record<string, string>>): PolicyNeeds {
  const ports = new Set<number>();
  const secrets = new Set<string>();
  for (const p of policies) {
    const spec = isObject(p) ? p.spec : undefined;
    if (!isObject(spec) || !selects(spec, podLabels)) continue;
    for (const s of Array.isArray(spec.sources) ? spec.sources : []) {
      if (!isObject(s)) continue;
      const port = httpPort(s.url);
      if (port !== null) ports.add(port);
      // Header credentials, and an OAuth client secret (auth.clientSecret: the sidecar is the OAuth client).
      const refs = [...(isObject(s.headers) ? Object.values(s.headers) : []), isObject(s.auth) ? s.auth.clientSecret : undefined];
      for (const v of refs) {
        const name = secretOf(v);
        if (name !== null) secrets.add(name);
      }
    }
  }
  return { httpPorts: [...ports].sort((a, b) => a - b), secrets: [...secrets].sort() };
}
