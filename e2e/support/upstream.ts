// The world outside a captured pod, started in its sandbox's upstream namespace (startPodSandbox
// with `upstream: true`): upstream-servers.mjs, with a real DNS server (dnsmasq) answering the
// upstream's names, server-everything behind recording relays on plain-HTTP ports, a TLS server,
// TCP banner ports and a real A2A agent. What the servers received is the tests' oracle.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { run } from '../../test/support/processes.js';
import { issueCa, issueServing } from '../../webhook/x509.js';
import type { PodSandbox, UpstreamNet } from './kubelet.js';
import { until } from './k8s.js';

const SERVERS = join(dirname(fileURLToPath(import.meta.url)), 'upstream-servers.mjs');

/** One thing an upstream server saw (upstream-servers.mjs prints them). */
export interface Seen {
  port: number;
  remote: string;
  /** The upstream's address the connection arrived at (IPv4 ones in ::ffff: form). */
  local: string;
  /** HTTP relays. */
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  body?: string;
  /** The TLS server. */
  tls?: true;
  sni?: string | null;
  /** TCP banner ports. */
  tcp?: true;
  /** The A2A agent: a message its executor ran. */
  a2a?: 'executed';
  text?: string;
  metadata?: Record<string, unknown>;
}

export interface Upstream {
  net: UpstreamNet;
  /** Names dnsmasq answers with the upstream's first addresses (ipv4, ipv6). */
  names: string[];
  /** Names dnsmasq answers with its second addresses (altIpv4, altIpv6). */
  altNames: string[];
  /** PEM of the CA that signed the TLS server's certificate (for every name and address). */
  ca: string;
  seen: Seen[];
  clear(): void;
  stop(): Promise<void>;
}

/**
 * Starts DNS and the servers. `http`: plain-HTTP relay ports; `tls`: the TLS server's port; `tcp`:
 * banner ports; `a2a`: the A2A agent's port (its card names http://<first name>:<port>). `names` (default mcp.test), and names ending in them, resolve to the upstream's
 * first two addresses; `altNames` to its second two. Every server answers on all four.
 */
export async function startUpstream(
  sandbox: PodSandbox,
  o: { names?: string[]; altNames?: string[]; http?: number[]; tls?: number; tcp?: number[]; a2a?: number } = {},
): Promise<Upstream> {
  const net = sandbox.upstream;
  if (!net) throw new Error('startUpstream needs a sandbox made with upstream: true');
  const names = o.names ?? ['mcp.test'];
  const altNames = o.altNames ?? [];
  let servers: ReturnType<typeof run> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tg-upstream-'));
  const stop = async () => {
    // SIGTERM: upstream-servers.mjs ends its children (dnsmasq, server-everything) first.
    await servers?.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const now = new Date();
    const ca = await issueCa({ now, validityMs: 3_600_000 });
    const serving = await issueServing({
      ca,
      sans: { dnsNames: [...names, ...altNames], ipAddresses: [net.ipv4, net.ipv6, net.altIpv4, net.altIpv6] },
      now,
      validityMs: 3_600_000,
    });
    writeFileSync(join(dir, 'tls.crt'), serving.cert);
    writeFileSync(join(dir, 'tls.key'), serving.key);

    const seen: Seen[] = [];
    let ready = false;
    servers = run('ip', [
      'netns',
      'exec',
      net.netns,
      process.execPath,
      SERVERS,
      JSON.stringify({
        dns: {
          // The second addresses too: a DNS server the pod's resolv.conf does not name.
          listen: [net.ipv4, net.ipv6, net.altIpv4, net.altIpv6],
          hosts: Object.fromEntries([...names.map((n) => [n, [net.ipv4, net.ipv6]]), ...altNames.map((n) => [n, [net.altIpv4, net.altIpv6]])]),
        },
        http: o.http ?? [80],
        tls: o.tls ? { port: o.tls, cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } : undefined,
        tcp: o.tcp ?? [],
        a2a: o.a2a ? { port: o.a2a, base: `http://${names[0]}:${o.a2a}` } : undefined,
      }),
    ]);
    readline.createInterface({ input: servers.child.stdout! }).on('line', (l) => {
      const m = JSON.parse(l) as Seen & { ready?: true };
      if (m.ready) ready = true;
      else seen.push(m);
    });
    await until(
      'the upstream servers and their DNS',
      async () => {
        if (servers!.child.exitCode !== null) throw new Error(`exited with ${servers!.child.exitCode}: ${servers!.err()}`);
        return ready;
      },
      30_000,
    );
    return {
      net,
      names,
      altNames,
      ca: ca.cert,
      seen,
      clear: () => {
        seen.length = 0;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
