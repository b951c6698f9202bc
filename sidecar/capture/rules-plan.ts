// The pod's capture rules as iptables-restore input, and what iptables-save must show after. Pure:
// install.ts runs the commands. docs/security.md explains the model.
//
// One chain TG_CAPTURE in nat and in filter, jumped to first thing from OUTPUT (so no rule another
// tool appended to OUTPUT can accept the agent's traffic before ours decides). Replacing our chain
// with `--noflush` leaves every other rule of the netns alone; re-running gives the same rules.
import { createHash } from 'node:crypto';
import type { CaptureSpec } from '../../api/capture.js';

export type Family = 'ipv4' | 'ipv6';
export const CAPTURE_CHAIN = 'TG_CAPTURE';
const JUMP = `-j ${CAPTURE_CHAIN}`;

/** The rules of our chain per table, each written as after `-A TG_CAPTURE `. */
export interface ChainRules {
  nat: string[];
  filter: string[];
}

/** iptables' multiport takes at most 15 ports per rule. */
function multiport(ports: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ports.length; i += 15) out.push(`-m multiport --dports ${ports.slice(i, i + 15).join(',')}`);
  return out;
}

/**
 * The chains for one family. `nameservers` may hold both families (canonical addresses); those of
 * this family are the DNS servers `dns: resolv` lets through.
 */
export function planRules(spec: CaptureSpec, family: Family, nameservers: readonly string[]): ChainRules {
  const v6 = family === 'ipv6';
  const loopback = v6 ? '::1' : '127.0.0.1';
  const owner = `-m owner --uid-owner ${spec.uid}`;
  const exceptions = spec.exceptions.filter((e) => e.family === (v6 ? 6 : 4)).map((e) => `-d ${e.cidr} -p tcp${e.port === null ? '' : ` --dport ${e.port}`}`);

  const nat = [
    '-o lo -j RETURN',
    `${owner} -j RETURN`,
    // Captured ports are redirected whatever the destination, exceptions included: an exception
    // wide enough to cover an MCP server must not open a way to it past the gates. On those ports
    // the sidecar decides (sources, egress lists); exceptions open the other ports.
    ...multiport(spec.redirectPorts).map((m) => `-p tcp ${m} -j REDIRECT --to-ports ${spec.transparentPort}`),
    ...(spec.tlsPort === null ? [] : [`-p tcp --dport 443 -j REDIRECT --to-ports ${spec.tlsPort}`]),
  ];

  const listeners = [spec.transparentPort, ...(spec.tlsPort === null ? [] : [spec.tlsPort])];
  const redirects = spec.redirectPorts.length > 0 || spec.tlsPort !== null;
  const dns = (proto: string) =>
    spec.dns === 'any'
      ? [`-p ${proto} --dport 53 -j ACCEPT`]
      : spec.dns === 'resolv'
        ? nameservers.filter((a) => a.includes(':') === v6).map((a) => `-d ${a}/${v6 ? 128 : 32} -p ${proto} --dport 53 -j ACCEPT`)
        : [];
  const filter = [
    '-o lo -j ACCEPT',
    `${owner} -j ACCEPT`,
    // Replies of connections made to the pod (probes, Services), and what the kernel relates to them.
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    // A redirected connection: filter still sees the original interface (the nat hook rerouted the
    // packet to lo after `-o` was fixed), so `-o lo` does not match it; its new destination does.
    ...(redirects ? [`-d ${loopback}/${v6 ? 128 : 32} -p tcp -m multiport --dports ${listeners.join(',')} -m conntrack --ctstate DNAT -j ACCEPT`] : []),
    // IPv6 neighbour discovery (and MLD reports) come from the kernel, owned by no user: without
    // them no IPv6 address on the link is reachable, the sidecar's connections included.
    ...(v6
      ? ['router-solicitation', 'neighbour-solicitation', 'neighbour-advertisement', '143'].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`)
      : []),
    ...dns('udp'),
    ...dns('tcp'),
    ...exceptions.map((m) => `${m} -j ACCEPT`),
    '-p tcp -j REJECT --reject-with tcp-reset',
    `-j REJECT --reject-with ${v6 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'}`,
  ];
  return { nat, filter };
}

/** How many `-A OUTPUT -j TG_CAPTURE` each table holds now (0 and 0 in a fresh netns). */
export interface Jumps {
  nat: number;
  filter: number;
}

/**
 * iptables-restore input (`--noflush`): declaring our chain empties it; the OUTPUT jumps there
 * already are deleted and one is inserted first, so a re-run ends with the same rules.
 */
export function restoreInput(rules: ChainRules, jumps: Jumps = { nat: 0, filter: 0 }): string {
  const table = (name: 'nat' | 'filter') => [
    `*${name}`,
    `:${CAPTURE_CHAIN} - [0:0]`,
    ...new Array<string>(jumps[name]).fill(`-D OUTPUT ${JUMP}`),
    `-I OUTPUT 1 ${JUMP}`,
    ...rules[name].map((r) => `-A ${CAPTURE_CHAIN} ${r}`),
    'COMMIT',
  ];
  return `${[...table('nat'), ...table('filter')].join('\n')}\n`;
}

/** sha256 of what a fresh netns gets, both families in order: the same spec and resolvers, the same hash. */
export function rulesHash(plans: readonly { family: Family; rules: ChainRules }[]): string {
  const h = createHash('sha256');
  for (const p of plans) h.update(`# ${p.family}\n${restoreInput(p.rules)}`);
  return h.digest('hex');
}

// ---------------------------------------------------------------- reading iptables-save

interface SavedTable {
  chains: Set<string>;
  /** Rules per chain, as written after `-A <chain> `. */
  rules: Map<string, string[]>;
}

/** iptables-save output → its tables. */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let cur: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: new Map() };
      tables.set(line.slice(1).trim(), cur);
    } else if (cur && line.startsWith(':')) {
      cur.chains.add(line.slice(1).split(' ')[0]!);
    } else if (cur && line.startsWith('-A ')) {
      const [, chain = '', ...rest] = line.split(' ');
      const list = cur.rules.get(chain) ?? [];
      list.push(rest.join(' '));
      cur.rules.set(chain, list);
    }
  }
  return tables;
}

/** Rules of every table and chain: how `--backend auto` tells which backend this netns already uses. */
export function ruleCount(saveText: string): number {
  let n = 0;
  for (const t of parseSave(saveText).values()) for (const r of t.rules.values()) n += r.length;
  return n;
}

export function jumpsIn(saveText: string): Jumps {
  const tables = parseSave(saveText);
  const count = (name: string) => (tables.get(name)?.rules.get('OUTPUT') ?? []).filter((r) => r === JUMP).length;
  return { nat: count('nat'), filter: count('filter') };
}

/**
 * What is wrong with the installed rules, per the save output (empty: all there): our chain in
 * both tables with as many rules as planned, ending in the REJECTs, and jumped to once, first.
 * Counted rather than compared as text: each backend writes matches back in its own spelling.
 */
export function verifySaved(saveText: string, rules: ChainRules): string[] {
  const tables = parseSave(saveText);
  const problems: string[] = [];
  for (const name of ['nat', 'filter'] as const) {
    const t = tables.get(name);
    if (!t?.chains.has(CAPTURE_CHAIN)) {
      problems.push(`${name}: no chain ${CAPTURE_CHAIN}`);
      continue;
    }
    const output = t.rules.get('OUTPUT') ?? [];
    if (output[0] !== JUMP || output.filter((r) => r === JUMP).length !== 1)
      problems.push(`${name}: OUTPUT does not start with the one jump to ${CAPTURE_CHAIN} (${output.length} rules)`);
    const ours = t.rules.get(CAPTURE_CHAIN) ?? [];
    if (ours.length !== rules[name].length) problems.push(`${name}: ${CAPTURE_CHAIN} has ${ours.length} rules, ${rules[name].length} planned`);
    if (name === 'filter' && !(ours.at(-1) ?? '').startsWith('-j REJECT')) problems.push(`filter: ${CAPTURE_CHAIN} does not end in a REJECT of everything`);
  }
  return problems;
}
