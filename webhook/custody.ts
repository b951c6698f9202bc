// The Secrets a pod's GovernancePolicies name (secretKeyRef), mounted into the sidecar container
// ONLY, at `${SECRETS_DIR}/<secret>`: the app containers never get the volume mount, and a mount
// exists only in the mount namespace of the container it is declared for, so the files are not
// reachable from the app (docs/security.md, custody).
import { createHash } from 'node:crypto';
import { SECRETS_DIR } from '../api/capture.js';
import type { Volume, VolumeMount } from './pod.js';

/** Beyond this many Secrets the rest are not mounted (a warning names them): a pod spec is not a key store. */
export const MAX_SECRET_MOUNTS = 32;
export const SECRET_VOLUME_PREFIX = 'tg-secret-';

/** A DNS label (≤ 63) for any Secret name (≤ 253), stable, and distinct from the pod's own volumes' usual names. */
export function secretVolumeName(secret: string): string {
  return `${SECRET_VOLUME_PREFIX}${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
}

export interface SecretMounts {
  volumes: Volume[];
  /** For the sidecar container alone. */
  mounts: VolumeMount[];
  warnings: string[];
}

export function secretMounts(secrets: readonly string[]): SecretMounts {
  const names = [...new Set(secrets)].sort();
  const kept = names.slice(0, MAX_SECRET_MOUNTS);
  const dropped = names.slice(MAX_SECRET_MOUNTS);
  return {
    volumes: kept.map((secretName) => ({
      name: secretVolumeName(secretName),
      // optional: a Secret created after the pod (or never) must not keep the pod from starting;
      // the sidecar denies that source's calls, naming the Secret, until it appears.
      // 0444: the sidecar's UID does not own the files (no fsGroup is imposed on the pod); they
      // are visible only inside the sidecar container's mount namespace, so "world" is the sidecar.
      secret: { secretName, optional: true, defaultMode: 0o444 },
    })),
    mounts: kept.map((secretName) => ({ name: secretVolumeName(secretName), mountPath: `${SECRETS_DIR}/${secretName}`, readOnly: true })),
    warnings: dropped.length
      ? [
          `thoughtgate: the policies selecting this pod name ${names.length} Secrets; only the first ${MAX_SECRET_MOUNTS} (by name) are mounted into the sidecar, so sources using ${dropped.join(', ')} get no credential`,
        ]
      : [],
  };
}
