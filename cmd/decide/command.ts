// `thoughtgate approve|reject`: argv → options → run; usage problems and setup failures are a
// message on stderr and exit status 2 (cli.ts only dispatches here).
import { parseArgs } from 'node:util';
import { decideHelp, decideOptions, type DecideFlags } from './options.js';

export async function decideCommand(verb: 'approve' | 'reject', args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return usage(verb, (err as Error).message.replace(/\. To specify.*$/s, ''));
  }
  if (parsed.values.help) {
    process.stdout.write(decideHelp(verb));
    return 0;
  }
  let o: ReturnType<typeof decideOptions>;
  try {
    o = decideOptions(verb, parsed.positionals, parsed.values as DecideFlags);
  } catch (err) {
    return usage(verb, (err as Error).message);
  }
  const { decide, DecideSetupError } = await import('./run.js');
  try {
    return await decide(o);
  } catch (err) {
    // Anything else is a bug, but still a sentence, not a stack trace over the person's terminal.
    const message = err instanceof DecideSetupError ? err.message : `unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
    process.stderr.write(`thoughtgate ${verb}: ${message}\n`);
    return 2;
  }
}

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  reason: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  as: { type: 'string' },
  'as-group': { type: 'string', multiple: true },
  'as-uid': { type: 'string' },
  timeout: { type: 'string' },
  'no-wait': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usage(verb: string, message: string): number {
  process.stderr.write(`thoughtgate ${verb}: ${message}\nRun "thoughtgate ${verb} --help" for the options.\n`);
  return 2;
}
