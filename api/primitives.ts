// Value types shared by the config document (config.ts) and the approval channel (approval.ts).
// A module of their own because config.ts also embeds approval.ts's channel schema: with these in
// config.ts the two modules would need each other while they initialise (an ESM import cycle).
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** DNS-label style name: used in URLs (/mcp/<source>) and Kubernetes object names. */
export const Name = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lowercase letters, digits and "-", starting and ending with a letter or digit (at most 63)');

/** A duration such as "30s", "10m" or "1h30m"; kept as text so documents round-trip unchanged. */
export const Duration = z.string({ error: 'expected a duration such as "30s", "10m" or "1h30m" (a quoted string with a unit)' }).superRefine((s, ctx) => {
  const r = parseDuration(s);
  if (typeof r !== 'number') ctx.addIssue({ code: 'custom', message: r.error });
});

/** A duration that must not be zero (a zero timeout would mean none at all). */
export const PositiveDuration = Duration.superRefine((s, ctx) => {
  if (parseDuration(s) === 0) ctx.addIssue({ code: 'custom', message: 'must be greater than zero' });
});

/** Glob: `*` matches any run of characters (including "/"), `?` one character, `\` escapes. */
export const Glob = z.string().min(1, 'a glob must not be empty');
export const GlobList = z.union([Glob, z.array(Glob).min(1)], { error: 'expected a glob or a non-empty list of globs' });
