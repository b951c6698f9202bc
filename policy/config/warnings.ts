// Warnings about a valid config: things that load and run but probably do not mean what was
// written. Pure; the sidecar logs them on every config it takes (sidecar/providers/file.ts).
// Today all are about A2A (issue 13).
import type { ConfigFile, RateLimit } from '../../api/config.js';
import { compileGlobs } from '../../api/glob.js';
import { A2A_METHODS, a2aAliases, canonicalA2aMethod } from '../gates/a2a-methods.js';
import { sendPairWarnings } from '../gates/rules.js';
import { policyStarts } from '../cedar/policies.js';

export function configWarnings(config: Pick<ConfigFile, 'rules' | 'cedar'> & { rateLimits?: readonly RateLimit[] }): string[] {
  return [
    ...sendPairWarnings(config.rules),
    ...rateLimitA2aWarnings(config.rateLimits ?? []),
    ...(config.cedar ? cedarA2aWarnings(config.cedar.policies) : []),
  ];
}

/**
 * Rate limits naming a `method` count A2A calls only: one whose methods name no A2A method counts
 * nothing (an MCP method such as tools/call, a typo); one covering one of SendMessage and
 * SendStreamingMessage lets the same message through the other way uncounted.
 */
export function rateLimitA2aWarnings(limits: readonly RateLimit[]): string[] {
  const out: string[] = [];
  limits.forEach((l, i) => {
    if (l.match.method === undefined) return;
    const label = l.name ?? `rateLimits[${i}]`;
    const g = compileGlobs(l.match.method);
    const covers = (m: string) => g(m) || a2aAliases(m).some(g);
    if (!A2A_METHODS.some(covers)) {
      out.push(
        `${label}: match.method names no A2A method, so this limit counts nothing (a limit with method counts A2A calls; MCP calls are limited by tool, resource or prompt)`,
      );
      return;
    }
    const send = covers('SendMessage');
    if (send !== covers('SendStreamingMessage'))
      out.push(
        `${label}: match.method covers ${send ? 'SendMessage' : 'SendStreamingMessage'} but not ${send ? 'SendStreamingMessage' : 'SendMessage'}: the same message sent the other way is not counted (name both unless that is meant)`,
      );
  });
  return out;
}

const ACTION = /Action::"((?:[^"\\]|\\.)*)"/g;

/**
 * Per Cedar policy: an action named in 0.3's spelling (`message/send`) never matches, Cedar sees
 * the canonical 1.0 name of either generation's call; and a policy naming one of SendMessage and
 * SendStreamingMessage without the other lets the same message through streaming (or not).
 */
export function cedarA2aWarnings(text: string): string[] {
  const out: string[] = [];
  for (const { at, body } of policiesOf(text)) {
    const actions = new Set([...body.matchAll(ACTION)].map((m) => m[1]!));
    for (const a of actions) {
      const canonical = canonicalA2aMethod(a);
      if (canonical !== undefined && canonical !== a)
        out.push(`cedar policy at ${at}: action "${a}" never matches: A2A calls of both generations reach Cedar as "${canonical}"`);
    }
    if (actions.has('SendMessage') !== actions.has('SendStreamingMessage')) {
      const [has, lacks] = actions.has('SendMessage') ? ['SendMessage', 'SendStreamingMessage'] : ['SendStreamingMessage', 'SendMessage'];
      out.push(
        `cedar policy at ${at}: names action "${has}" but not "${lacks}": the same message sent the other way is not decided by this policy (name both unless that is meant)`,
      );
    }
  }
  return out;
}

/** Each policy's text and `line:column`, from policyStarts (whole text as one when it cannot split it). */
function policiesOf(text: string): { at: string; body: string }[] {
  const starts = policyStarts(text);
  if (!starts || starts.length === 0) return text.trim() ? [{ at: '1:1', body: text }] : [];
  const lineStart = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStart.push(i + 1);
  const offsets = starts.map(({ line, column }) => {
    const from = lineStart[line - 1]!;
    // column counts code points
    return from + [...text.slice(from, lineStart[line] ?? text.length)].slice(0, column - 1).join('').length;
  });
  return starts.map((s, i) => ({ at: `${s.line}:${s.column}`, body: text.slice(offsets[i], offsets[i + 1] ?? text.length) }));
}
