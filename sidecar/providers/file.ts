// Standalone config: thoughtgate.yaml, watched. The first load happens before the sidecar starts
// (a bad file at start is a startup error); later changes go through the same parser and an
// invalid one is reported without replacing the running config.
import { readFile } from 'node:fs/promises';
import type { ConfigFile } from '../../api/config.js';
import { describeFsError, parseConfigText, type Env } from '../../policy/config/load.js';
import { configWarnings } from '../../policy/config/warnings.js';
import { resolveIdentity } from '../config/podinfo.js';
import { watchFile, type FileWatch } from '../config/watch-file.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigProvider, ConfigUpdate } from '../sidecar.js';

export type InitialLoad = { ok: true; text: string; config: ConfigFile; hash: string } | { ok: false; errors: string[] };

export async function loadInitial(path: string, env: Env): Promise<InitialLoad> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${path}: ${describeFsError(err)}`] };
  }
  const r = parseConfigText(text, path, env);
  return r.ok ? { ok: true, text, config: r.config, hash: r.hash } : r;
}

export function fileProvider(path: string, env: Env, initial: InitialLoad & { ok: true }, log: Logger, pollMs?: number): ConfigProvider {
  let watch: FileWatch | null = null;
  const toUpdate = (config: ConfigFile, hash: string): ConfigUpdate => {
    const { identity, warnings } = resolveIdentity(env, config);
    for (const w of warnings) log.warn('identity', { warning: w });
    for (const w of configWarnings(config)) log.warn('config', { warning: w });
    const { identity: _ignored, ...doc } = config;
    return { ok: true, doc, identity, hash, origin: path };
  };
  return {
    description: `file ${path}`,
    start(onUpdate) {
      onUpdate(toUpdate(initial.config, initial.hash));
      watch = watchFile(
        path,
        (text) => {
          const r = parseConfigText(text, path, env);
          onUpdate(r.ok ? toUpdate(r.config, r.hash) : { ok: false, errors: r.errors, origin: path });
        },
        {
          initialText: initial.text,
          pollMs,
          onError: (err) => log.warn('config file unreadable; keeping the last good config', { file: path, error: err.message }),
        },
      );
    },
    close() {
      watch?.close();
      watch = null;
    },
  };
}
