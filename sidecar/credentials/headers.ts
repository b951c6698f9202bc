// The one place a source's configured headers become the headers sent upstream: literal values as
// written, credential references resolved from the store at the moment of the call (so a rotated
// Secret is used by the next call). Every upstream path (POST, GET streams, DELETE, calls gate 4
// makes later) takes its headers from here.
import { isSecretValue, type HeaderValue, type SecretValue } from '../../api/config.js';
import type { CredentialResult } from './plan.js';

/** What the store offers a header: the current value of a reference. */
export interface CredentialLookup {
  get(ref: SecretValue): CredentialResult;
}

export type SourceHeaders =
  | { ok: true; headers: Record<string, string> }
  /** `reason` names the header and the credential (Secret and key, file or variable), never a value. */
  | { ok: false; reason: string };

/** Resolves a source's headers now. */
export function resolveHeaders(configured: Readonly<Record<string, HeaderValue>>, store: CredentialLookup): SourceHeaders {
  const headers: Record<string, string> = {};
  const problems: string[] = [];
  for (const [name, v] of Object.entries(configured)) {
    if (!isSecretValue(v)) {
      headers[name] = v;
      continue;
    }
    const r = store.get(v);
    if (r.ok) headers[name] = r.value;
    else problems.push(`header ${name}: ${r.reason}`);
  }
  return problems.length === 0 ? { ok: true, headers } : { ok: false, reason: problems.join('; ') };
}

/** The references among a source's headers (what a snapshot retains in the store). */
export function credentialRefs(configured: Readonly<Record<string, HeaderValue>> | undefined): SecretValue[] {
  return Object.values(configured ?? {}).filter(isSecretValue);
}

/** For a snapshot compiled without a store (`thoughtgate validate`): every reference is unavailable. */
export const NO_CREDENTIALS: CredentialLookup = { get: () => ({ ok: false, reason: 'no credential store in this process' }) };
