// Writes a Secret volume the way the kubelet's AtomicWriter does, run by the test kubelet inside
// the container's mount namespace (nsenter -t <holder> -m), so the files exist nowhere else:
//
//   <dir>/..2026_12_06_05_00_00.123456789/<key>   the payload, in a fresh timestamped directory
//   <dir>/..data -> ..2026_12_06_…               swapped atomically (symlink ..data_tmp, rename)
//   <dir>/<key> -> ..data/<key>                   one per key, stable across updates
//
// A reader that opens <dir>/<key> sees the old payload or the new one, never a mix; a watcher
// sees ..data change. stdin: {"dir": "...", "files": {"<key>": "<base64>"}, "mode": 420}.
import { chmodSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { dir, files, mode = 0o644 } = JSON.parse(input);

const now = new Date();
const pad = (n, w = 2) => String(n).padStart(w, '0');
const stamp = `..${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}.${process.hrtime.bigint() % 1_000_000_000n}`;
const payload = join(dir, stamp);
mkdirSync(payload, { mode: 0o755 });
for (const [key, b64] of Object.entries(files)) {
  writeFileSync(join(payload, key), Buffer.from(b64, 'base64'));
  chmodSync(join(payload, key), mode);
}
let old = null;
try {
  old = readlinkSync(join(dir, '..data'));
} catch {}
symlinkSync(stamp, join(dir, '..data_tmp'));
renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
// Keys: a symlink for each current one; gone keys lose theirs.
for (const name of readdirSync(dir)) {
  if (!name.startsWith('..') && !(name in files)) unlinkSync(join(dir, name));
}
for (const key of Object.keys(files)) {
  try {
    symlinkSync(join('..data', key), join(dir, key));
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
  }
}
if (old && old !== stamp) rmSync(join(dir, old), { recursive: true, force: true });
