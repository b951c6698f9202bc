import { expandString, substituteEnv, substituteForValidation } from './env.js';

const env = { HOST: 'mcp.example.com', TOKEN: 's3cret', EMPTY: '', N: '42' };

describe('substituteEnv', () => {
  test('replaces ${VAR} anywhere in a string, several times', () => {
    expect(substituteEnv('https://${HOST}/mcp?t=${TOKEN}&h=${HOST}', env)).toEqual({
      value: 'https://mcp.example.com/mcp?t=s3cret&h=mcp.example.com',
      errors: [],
    });
  });

  test('${VAR:-default}: default when unset or empty, value otherwise', () => {
    expect(substituteEnv(['${NOPE:-d1}', '${EMPTY:-d2}', '${HOST:-d3}', '${NOPE:-}', '${NOPE:-a:-b}'], env).value).toEqual([
      'd1',
      'd2',
      'mcp.example.com',
      '',
      'a:-b',
    ]);
  });

  test('the default is literal text: it is not expanded itself', () => {
    expect(substituteEnv('${NOPE:-$HOST}', env).value).toBe('$HOST');
  });

  test('an empty variable without a default is the empty string, not an error', () => {
    expect(substituteEnv('a${EMPTY}b', env)).toEqual({ value: 'ab', errors: [] });
  });

  test('$${ is a literal ${ and a lone $ is literal', () => {
    expect(substituteEnv(['$${HOST}', 'pa$$word', 'cost: $5', 'end$', '$HOST', '$', '$}', 'a$${b$${'], env).value).toEqual([
      '${HOST}',
      'pa$$word',
      'cost: $5',
      'end$',
      '$HOST',
      '$',
      '$}',
      'a${b${',
    ]);
  });

  test('nested objects and arrays, keys untouched, non-strings untouched, input not mutated', () => {
    const doc = {
      sources: [{ name: 'a', url: 'https://${HOST}/mcp', headers: { Authorization: 'Bearer ${TOKEN}', '${HOST}': 'k' } }],
      limits: { maxBodyBytes: 4096 },
      flags: [true, null, 1.5, ['${N}']],
    };
    const copy = structuredClone(doc);
    const r = substituteEnv(doc, env);
    expect(r.errors).toEqual([]);
    expect(r.value).toEqual({
      sources: [{ name: 'a', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer s3cret', '${HOST}': 'k' } }],
      limits: { maxBodyBytes: 4096 },
      flags: [true, null, 1.5, ['42']],
    });
    expect(doc).toEqual(copy);
  });

  test('an unset variable is an error at the path of its string; the text is kept', () => {
    const r = substituteEnv({ sources: [{ url: 'https://${HOST}/mcp' }, { url: '${MISSING}/x', headers: { A: '${ALSO_MISSING}' } }] }, env);
    expect(r.errors).toEqual([
      { path: ['sources', 1, 'url'], message: 'environment variable MISSING is not set' },
      { path: ['sources', 1, 'headers', 'A'], message: 'environment variable ALSO_MISSING is not set' },
    ]);
    expect((r.value as { sources: { url: string }[] }).sources[1]!.url).toBe('${MISSING}/x');
  });

  test('only own properties of env count', () => {
    expect(substituteEnv('${constructor}', {}).errors).toEqual([{ path: [], message: 'environment variable constructor is not set' }]);
  });

  test('malformed references are errors that name them', () => {
    const r = substituteEnv({ a: 'x${HOST', b: '${1ABC}', c: '${A-b}', d: '${}', e: '${ HOST }' }, env);
    expect(r.errors.map((e) => [e.path, e.message])).toEqual([
      [['a'], 'unterminated variable reference "${HOST" (missing "}"); write $${ for a literal "${"'],
      [['b'], expect.stringMatching(/^invalid variable reference "\$\{1ABC\}": use \$\{NAME\} or \$\{NAME:-default\}/)],
      [['c'], expect.stringContaining('"${A-b}"')],
      [['d'], expect.stringContaining('"${}"')],
      [['e'], expect.stringContaining('"${ HOST }"')],
    ]);
  });

  test('a value with a newline and YAML syntax stays one string (no injection)', () => {
    const evil = 'x\n- evil: true\nrules: []';
    const r = substituteEnv({ rules: [{ reason: '${X}' }] }, { X: evil });
    expect(r.value).toEqual({ rules: [{ reason: evil }] });
  });
});

describe('substituteForValidation', () => {
  test('uses the default, else a neutral placeholder that keeps URLs valid; ignores the environment', () => {
    const r = substituteForValidation({ url: 'https://${HOST}:${PORT}/mcp', port: '${PORT:-8080}', empty: '${E:-}', lit: '$${HOST}' });
    expect(r).toEqual({ value: { url: 'https://1:1/mcp', port: '8080', empty: '', lit: '${HOST}' }, errors: [] });
    expect(() => new URL((r.value as { url: string }).url)).not.toThrow();
  });

  test('still reports malformed references', () => {
    expect(substituteForValidation({ u: '${bad-name}' }).errors).toEqual([{ path: ['u'], message: expect.stringContaining('"${bad-name}"') }]);
  });
});

test('expandString reports each problem and keeps going', () => {
  const r = expandString('${A} ${1} ${B', (name) => (name === 'A' ? 'a' : { error: `no ${name}` }));
  expect(r.value).toBe('a ${1} ${B');
  expect(r.errors).toHaveLength(2);
});
