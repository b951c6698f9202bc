// Canonical JSON: object keys sorted (by UTF-16 code unit), no whitespace, strings and numbers as
// JSON.stringify writes them, `undefined` members dropped. Equal values give equal text, so their
// hashes (config hash, approval request hash) are stable. Pure.

export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const members = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
  return `{${members.join(',')}}`;
}
