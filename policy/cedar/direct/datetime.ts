/**
 * Cedar's `datetime("…")` and `duration("…")` literals, for the direct evaluator.
 *
 * Only the forms below are modelled; compile.ts sends a policy with any other literal to wasm.
 * Validity (month 13, Feb 30, overflow) was already checked by Cedar itself when the policies
 * were compiled (policies.ts checkLiteral), so these parsers only need to compute the value of a
 * literal Cedar accepts — and return null for anything they are unsure of.
 */
import { Datetime, Duration, I64_MAX, I64_MIN } from './values.js';

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?(Z|[+-]\d{4}))?$/;

export function parseDatetime(text: string): Datetime | null {
  const m = DATETIME.exec(text);
  if (!m) return null;
  const [y, mo, d, h = '0', mi = '0', s = '0', ms = '0'] = m.slice(1, 8) as (string | undefined)[];
  const year = Number(y);
  // Date.UTC maps years 0–99 to 1900+; Cedar's leap-second and range rules are not modelled.
  if (year < 100 || Number(s) > 59 || Number(h) > 23 || Number(mi) > 59) return null;
  const at = Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms));
  const date = new Date(at);
  // Rolled over (e.g. Feb 30): not a date Cedar accepts; leave it to wasm.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d)) return null;
  const zone = m[8];
  let offsetMs = 0;
  if (zone && zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(3, 5));
    if (oh > 23 || om > 59) return null;
    offsetMs = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return new Datetime(BigInt(at - offsetMs));
}

const DURATION = /^(-?)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNIT_MS = [86_400_000n, 3_600_000n, 60_000n, 1000n, 1n];

export function parseDuration(text: string): Duration | null {
  const m = DURATION.exec(text);
  if (!m || text === '' || text === '-') return null;
  let total = 0n;
  for (let i = 0; i < 5; i++) {
    const part = m[i + 2];
    if (part !== undefined) total += BigInt(part) * UNIT_MS[i]!;
  }
  const ms = m[1] ? -total : total;
  return ms < I64_MIN || ms > I64_MAX ? null : new Duration(ms);
}

export const DAY_MS = 86_400_000n;
