// A secret volume laid out the way the kubelet's atomic writer does it: the data lives in a
// timestamped directory, `..data` is a symlink to it, and each key is a symlink `key -> ..data/key`.
// An update writes a new timestamped directory, points `..data_tmp` at it and renames that over
// `..data` (one atomic rename), then removes the old directory.
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

let counter = 0;

/** Writes (or rotates to) `data` in the volume at `dir`, exactly as the kubelet swaps it. */
export function writeSecretVolume(dir: string, data: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${process.pid}.${++counter}`;
  mkdirSync(join(dir, stamp));
  for (const [k, v] of Object.entries(data)) writeFileSync(join(dir, stamp, k), v, { mode: 0o644 });
  const dataLink = join(dir, '..data');
  const old = existsSync(dataLink) ? readlinkSync(dataLink) : null;
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), dataLink);
  // Key links point through ..data, so they only need creating once (and removing for dropped keys).
  for (const k of Object.keys(data)) if (!existsSync(join(dir, k))) symlinkSync(join('..data', k), join(dir, k));
  if (old) rmSync(join(dir, old), { recursive: true, force: true });
}

/** The Secret was deleted (an optional volume): the kubelet empties the volume. */
export function emptySecretVolume(dir: string, keys: string[]): void {
  writeSecretVolume(dir, {});
  for (const k of keys) rmSync(join(dir, k), { force: true });
}
