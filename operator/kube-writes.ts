// How the operator writes: server-side apply under one field manager for what it owns, merge
// patches for status, and a 404 on a delete or a status write of a vanished object is no error.
import * as k8s from '@kubernetes/client-node';

export const FIELD_MANAGER = 'thoughtgate-operator';

export const serverSideApply = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
export const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** The HTTP status of a client-node API error. */
export const statusCode = (err: unknown): number | undefined => (err as { code?: number }).code;

/** For `.catch`: a 404 (already gone) is fine, anything else is thrown again. */
export function ignoreNotFound(err: unknown): void {
  if (statusCode(err) !== 404) throw err;
}

/** Condition and Event messages stay readable: kubectl shows them whole. */
export function truncate(s: string): string {
  return s.length > 1024 ? `${s.slice(0, 1021)}...` : s;
}
