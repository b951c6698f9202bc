// Credential custody, the shell: the sidecar's one holder of credential values (source headers,
// OAuth client secrets). Each reference is read when first used or when a snapshot retains it,
// then watched: a Secret rotated by the kubelet (an atomic swap of the volume's `..data` symlink),
// or a file rewritten in place, is picked up without a restart or a config reload. A missing,
// unreadable or invalid credential is a state with a reason, and the reason never holds the value.
import type { SecretValue } from '../../api/config.js';
import { SECRETS_DIR, SECRETS_DIR_ENV } from '../../api/capture.js';
import { describeFsError, type Env } from '../../policy/config/load.js';
import type { Logger } from '../../lib/log.js';
import { readBoundedSync, watchFile, type FileWatch } from '../config/watch-file.js';
import { acceptValue, describeRef, locate, MAX_CREDENTIAL_BYTES, refKey, type CredentialResult, type Location } from './plan.js';

export type { CredentialResult };

/** What /ready shows of one credential: where it comes from and whether it is usable. */
export interface CredentialStatus {
  credential: string;
  ok: boolean;
  reason?: string;
  /** When it last became usable or unusable. */
  since: string;
}

export interface CredentialStore {
  /** The credential's current value with its prefix. A reference not retained yet is read now (synchronously) and watched. */
  get(ref: SecretValue): CredentialResult;
  /**
   * Makes these the credentials in use (a new config snapshot): each is read again now, new ones
   * start being watched, the others stop. The sidecar passes Snapshot.credentialRefs: a credential
   * used for anything but a header (an OAuth client secret) belongs in that list too (compileSnapshot).
   */
  retain(refs: readonly SecretValue[]): void;
  /** Every credential in use, for /ready. */
  report(): CredentialStatus[];
  close(): void;
}

export interface CredentialStoreOptions {
  /** Where secret volumes are mounted (`<dir>/<secret>/<key>`); default THOUGHTGATE_SECRETS_DIR, else SECRETS_DIR. */
  secretsDir?: string;
  /** For `env` references and THOUGHTGATE_SECRETS_DIR; default process.env. */
  env?: Env;
  /** Relative `file` references are taken from here; default process.cwd(). */
  cwd?: string;
  /** Re-read interval behind the directory watch (events can be missed); default 2000 ms. */
  pollMs?: number;
  /** Quiet time after a directory event before reading; default 100 ms. */
  debounceMs?: number;
  log?: Logger;
}

interface Entry {
  label: string;
  at: Location;
  state: CredentialResult;
  since: string;
  watch: FileWatch | null;
}

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EFBIG') return `is larger than ${MAX_CREDENTIAL_BYTES} bytes`;
  if (code === 'ENOENT') return 'does not exist (not mounted, or the Secret or key is missing)';
  if (code === 'ENOTDIR') return 'does not exist (a parent is not a directory)';
  // A FIFO or a device would block the sidecar (or never end): refused before it is opened.
  if (code === 'ENOTREG') return `is not a regular file (it is ${(err as { kind?: string }).kind ?? 'something else'})`;
  // describeFsError names the errno, never the file's content.
  return `cannot be read: ${describeFsError(err)}`;
}

export function createCredentialStore(o: CredentialStoreOptions = {}): CredentialStore {
  const env = o.env ?? process.env;
  const secretsDir = o.secretsDir ?? (env[SECRETS_DIR_ENV] || SECRETS_DIR);
  const cwd = o.cwd ?? process.cwd();
  const entries = new Map<string, Entry>();
  let closed = false;

  const set = (e: Entry, next: CredentialResult): void => {
    const was = e.state;
    e.state = next;
    if (was.ok === next.ok && (next.ok ? was.ok && was.value === next.value : !was.ok && was.reason === next.reason)) return;
    e.since = new Date().toISOString();
    // Transitions only, named by their reference: the value itself never reaches a log line.
    if (next.ok) o.log?.info(was.ok ? 'credential rotated' : 'credential available', { credential: e.label });
    else o.log?.warn('credential unavailable; calls that need it are denied', { credential: e.label, reason: next.reason });
  };

  const readNow = (at: Location): CredentialResult => {
    if (at.kind === 'env') {
      const v = Object.hasOwn(env, at.name) ? env[at.name] : undefined;
      return v === undefined ? { ok: false, reason: 'is not set' } : acceptValue(v);
    }
    try {
      // Synchronous: a new snapshot starts with its credentials in place (a few small files, on a reload).
      return acceptValue(readBoundedSync(at.path, MAX_CREDENTIAL_BYTES));
    } catch (err) {
      return { ok: false, reason: describeReadError(err) };
    }
  };

  const track = (key: string, ref: SecretValue): Entry => {
    const at = locate(ref, secretsDir, cwd);
    const label = describeRef(ref);
    const first = readNow(at);
    const e: Entry = { label, at, state: { ok: false, reason: 'not read yet' }, since: new Date().toISOString(), watch: null };
    set(e, first);
    entries.set(key, e);
    if (at.kind === 'file' && !closed) {
      // The watch starts from what was just read, so a change in between is still reported.
      e.watch = watchFile(at.path, (text) => set(e, acceptValue(text)), {
        initialText: null,
        maxBytes: MAX_CREDENTIAL_BYTES,
        redeliverAfterError: true,
        ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
        ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}),
        onError: (err) => set(e, { ok: false, reason: describeReadError(err) }),
      });
    }
    return e;
  };

  return {
    get(ref) {
      const key = refKey(ref);
      const e = entries.get(key) ?? track(key, ref);
      const s = e.state;
      if (!s.ok) return { ok: false, reason: `${e.label} ${s.reason}` };
      return { ok: true, value: `${ref.prefix ?? ''}${s.value}` };
    },
    retain(refs) {
      const keep = new Map(refs.map((r) => [refKey(r), r]));
      for (const [key, e] of entries) {
        if (keep.has(key)) continue;
        e.watch?.close();
        entries.delete(key);
      }
      for (const [key, ref] of keep) {
        const e = entries.get(key);
        if (e) set(e, readNow(e.at));
        else track(key, ref);
      }
    },
    report() {
      return [...entries.values()].map((e) => ({ credential: e.label, ok: e.state.ok, ...(e.state.ok ? {} : { reason: e.state.reason }), since: e.since }));
    },
    close() {
      closed = true;
      for (const e of entries.values()) e.watch?.close();
      entries.clear();
    },
  };
}
