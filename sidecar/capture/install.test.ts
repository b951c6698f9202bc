// The decisions of capture-init's act that this machine cannot show for real (no nf_tables, no
// IPv6, an iptables that lies), through a scripted host. The real kernel and iptables:
// test/capture/capture-init.test.ts.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CaptureInitHost, CaptureInitError, captureInit, detectBackend, hasIPv6, type RunResult } from './install.js';
import { captureInitOptions } from './spec.js';

/** Answers each command from a table (missing: exit 1) and records what ran. */
function host(answers: Record<string, RunResult>, files: Record<string, string> = {}): CaptureInitHost & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    async run(cmd, args) {
      ran.push([cmd, ...args].join(' '));
      return answers[cmd] ?? { code: 1, stdout: '', stderr: `${cmd}: not here` };
    },
    async readFile(p) {
      if (p in files) return files[p]!;
      throw new Error(`ENOENT ${p}`);
    },
    now: () => 0,
  };
}
const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const withRules = ok('*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j KUBE-SERVICES\n-A OUTPUT -j X\nCOMMIT\n');

describe('detectBackend', () => {
  it('forced: runs nothing', async () => {
    const h = host({});
    expect(await detectBackend(h, 'legacy')).toBe('legacy');
    expect(h.ran).toEqual([]);
  });
  it('auto: the backend holding rules, else nft when it answers, else legacy', async () => {
    expect(await detectBackend(host({ 'iptables-legacy-save': withRules, 'iptables-nft': ok() }), 'auto')).toBe('legacy');
    expect(await detectBackend(host({ 'ip6tables-nft-save': withRules, 'iptables-legacy-save': ok() }), 'auto')).toBe('nft');
    expect(await detectBackend(host({ 'iptables-nft': ok() }), 'auto')).toBe('nft');
    const none = host({});
    expect(await detectBackend(none, 'auto')).toBe('legacy');
    expect(none.ran.at(-1)).toBe('iptables-nft -t nat -S');
  });
});

describe('hasIPv6', () => {
  it.each([
    [{}, false],
    [{ '/proc/net/if_inet6': '' }, false],
    [{ '/proc/net/if_inet6': '00000000000000000000000000000001 01 80 10 80 lo\n' }, true],
    [{ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0\n' }, true],
    [{ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '1\n' }, false],
  ])('%j → %s', async (files, expected) => {
    expect(await hasIPv6(host({}, files))).toBe(expected);
  });
});

describe('captureInit', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const opts = (extra: Record<string, string> = {}) => {
    const d = mkdtempSync(join(tmpdir(), 'tg-capinit-'));
    dirs.push(d);
    const o = captureInitOptions({ backend: 'nft', dns: 'none', 'state-file': join(d, 's', 'state.json'), ...extra });
    if (!o.ok) throw new Error(o.error);
    return o.value;
  };
  it('fails when the rules read back are not what was planned, and writes no state', async () => {
    const o = opts();
    const h = host({ 'iptables-nft-save': ok(), 'iptables-nft-restore': ok() });
    await expect(captureInit(o, h)).rejects.toThrow(
      new CaptureInitError('iptables-nft-restore ran but the rules read back are not ours: nat: no chain TG_CAPTURE; filter: no chain TG_CAPTURE'),
    );
    expect(existsSync(o.stateFile)).toBe(false);
  });
  it('fails with iptables-restore’s own message', async () => {
    const h = host({ 'iptables-nft-save': ok(), 'iptables-nft-restore': { code: 2, stdout: '', stderr: 'iptables-nft-restore: line 7 failed\n' } });
    await expect(captureInit(opts(), h)).rejects.toThrow('iptables-nft-restore failed (2): iptables-nft-restore: line 7 failed');
  });
  /** An iptables that keeps what it is given: save prints back the last restore's rules. */
  it('--ipv6 on: ip6tables too, and a missing ip6tables fails; off: no ip6tables', async () => {
    const h = host({});
    let ip6 = false;
    const restores: Record<string, string> = {};
    h.run = async (cmd, args, input) => {
      h.ran.push([cmd, ...args].join(' '));
      const [, family, tool] = /^(ip6?tables)-nft-(save|restore)$/.exec(cmd) ?? [];
      if (!family || (family === 'ip6tables' && !ip6)) return { code: 1, stdout: '', stderr: `${cmd}: not here` };
      if (tool === 'restore') restores[family] = input ?? '';
      const saved = (restores[family] ?? '').replace(/^-I OUTPUT 1 /gm, '-A OUTPUT ');
      return ok(tool === 'save' ? saved : '');
    };
    await expect(captureInit(opts({ ipv6: 'on' }), h)).rejects.toThrow('ip6tables-nft-save failed (1): ip6tables-nft-save: not here');
    ip6 = true;
    const o = opts({ ipv6: 'on' });
    const r = await captureInit(o, h);
    expect(r.state).toMatchObject({ backend: 'nft', families: ['ipv4', 'ipv6'] });
    expect(existsSync(o.stateFile)).toBe(true);
    h.ran.length = 0;
    ip6 = false;
    const off = await captureInit(opts({ ipv6: 'off' }), h);
    expect(off.state.families).toEqual(['ipv4']);
    expect(h.ran.some((c) => c.startsWith('ip6tables'))).toBe(false);
  });
});
