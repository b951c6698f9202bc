import { identityFromEnv, parseLabelsFile, resolveIdentity, standaloneIdentity, unquoteGo } from './podinfo.js';

describe('parseLabelsFile', () => {
  test('the format kubelet writes: key="value" lines, sorted, no trailing newline', () => {
    const text = 'app="checkout"\napp.kubernetes.io/name="agent"\npod-template-hash="7c5ddbdf54"\nthoughtgate.io/inject="enabled"';
    expect(parseLabelsFile(text)).toEqual({
      labels: { app: 'checkout', 'app.kubernetes.io/name': 'agent', 'pod-template-hash': '7c5ddbdf54', 'thoughtgate.io/inject': 'enabled' },
      errors: [],
    });
  });

  test('Go escapes', () => {
    const lines = [
      String.raw`quote="say \"hi\""`,
      String.raw`back="a\\b"`,
      String.raw`nl="one\ntwo"`,
      String.raw`tab="a\tb\r\a\b\f\v"`,
      String.raw`u="caf\u00e9"`,
      'raw="café ✓"',
      String.raw`x="caf\xc3\xa9"`,
      String.raw`oct="caf\303\251"`,
      String.raw`big="\U0001F600"`,
      'empty=""',
      'eq="a=b"',
    ];
    expect(parseLabelsFile(lines.join('\n'))).toEqual({
      labels: {
        quote: 'say "hi"',
        back: 'a\\b',
        nl: 'one\ntwo',
        tab: 'a\tb\r\x07\b\f\v',
        u: 'café',
        raw: 'café ✓',
        x: 'café',
        oct: 'café',
        big: '😀',
        empty: '',
        eq: 'a=b',
      },
      errors: [],
    });
  });

  test('bad lines are skipped and reported with their line number; blank lines and CRLF are fine', () => {
    const text = [
      'ok="1"',
      'novalue',
      'bare=unquoted',
      'open="abc',
      String.raw`esc="\q"`,
      '="x"',
      '',
      'inner="a"b"',
      String.raw`surrogate="\ud800"`,
      'crlf="2"\r',
      '',
    ].join('\n');
    const r = parseLabelsFile(text);
    expect(r.labels).toEqual({ ok: '1', crlf: '2' });
    expect(r.errors).toEqual([
      'line 2: expected key="value", got "novalue"',
      'line 3 (bare): value is not a "quoted" string',
      'line 4 (open): value is not a "quoted" string',
      'line 5 (esc): unknown escape "\\q"',
      'line 6: expected key="value", got "=\\"x\\""',
      'line 8 (inner): unescaped " inside the value',
      'line 9 (surrogate): bad escape "\\ud800"',
    ]);
  });

  test('a label named __proto__ is an ordinary key', () => {
    const { labels } = parseLabelsFile('__proto__="x"\nconstructor="y"');
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    expect(Object.keys(labels)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value).toBe('x');
  });

  test('unquoteGo rejects truncated escapes', () => {
    expect(unquoteGo('"\\x4"')).toEqual({ error: 'bad escape "\\x4"' });
    expect(unquoteGo('"\\u12"')).toEqual({ error: 'bad escape "\\u12"' });
    expect(unquoteGo('"\\400"')).toEqual({ error: 'bad escape "\\400"' });
    expect(unquoteGo('"abc\\"')).toEqual({ error: 'value ends with a lone backslash' });
  });
});

/** A readFile stand-in that records the paths it was asked for. */
function fakeRead(text: string) {
  const paths: string[] = [];
  const read = (p: string): string => {
    paths.push(p);
    return text;
  };
  return Object.assign(read, { paths });
}

describe('identityFromEnv', () => {
  const cluster = { POD_NAME: 'agent-7c5d-x2k', POD_NAMESPACE: 'shop', SERVICE_ACCOUNT: 'checkout-agent' };

  test('standalone (no POD_NAMESPACE): null', () => {
    expect(identityFromEnv({ POD_NAME: 'x' }, () => 'app="a"')).toBeNull();
    expect(identityFromEnv({ POD_NAMESPACE: '' }, () => '')).toBeNull();
  });

  test('from the downward API, labels from the default file', () => {
    const read = fakeRead('app="checkout"\ntier="agent"');
    expect(identityFromEnv(cluster, read)).toEqual({
      identity: { namespace: 'shop', serviceAccount: 'checkout-agent', pod: 'agent-7c5d-x2k', labels: { app: 'checkout', tier: 'agent' } },
      warnings: [],
    });
    expect(read.paths).toEqual(['/etc/podinfo/labels']);
  });

  test('THOUGHTGATE_LABELS_FILE moves the labels file; bad lines become warnings', () => {
    const read = fakeRead('app="checkout"\nbroken');
    const r = identityFromEnv({ ...cluster, THOUGHTGATE_LABELS_FILE: '/podinfo/labels' }, read);
    expect(read.paths).toEqual(['/podinfo/labels']);
    expect(r!.identity.labels).toEqual({ app: 'checkout' });
    expect(r!.warnings).toEqual(['/podinfo/labels: line 2: expected key="value", got "broken"']);
  });

  test('an unreadable labels file: no labels and a warning', () => {
    const r = identityFromEnv(cluster, () => {
      throw Object.assign(new Error("ENOENT: no such file or directory, open '/etc/podinfo/labels'"), { code: 'ENOENT' });
    });
    expect(r!.identity.labels).toEqual({});
    expect(r!.warnings).toEqual([
      "/etc/podinfo/labels: cannot read pod labels (ENOENT: no such file or directory, open '/etc/podinfo/labels'); policies will see no labels",
    ]);
  });

  test('missing POD_NAME falls back to HOSTNAME, missing SERVICE_ACCOUNT to "default", with warnings', () => {
    const r = identityFromEnv({ POD_NAMESPACE: 'shop', HOSTNAME: 'agent-abc' }, () => '');
    expect(r!.identity).toEqual({ namespace: 'shop', serviceAccount: 'default', pod: 'agent-abc', labels: {} });
    expect(r!.warnings).toEqual(['POD_NAME is not set; using "agent-abc" as the pod name', 'SERVICE_ACCOUNT is not set; using "default"']);
  });
});

describe('standalone identity', () => {
  test("defaults, and the config file's identity", () => {
    expect(standaloneIdentity({})).toEqual({ namespace: 'default', serviceAccount: 'default', pod: 'standalone', labels: {} });
    expect(standaloneIdentity({ identity: { namespace: 'dev', serviceAccount: 'me', pod: 'laptop', labels: { a: 'b' } } })).toEqual({
      namespace: 'dev',
      serviceAccount: 'me',
      pod: 'laptop',
      labels: { a: 'b' },
    });
  });

  test('resolveIdentity prefers the pod, else the file', () => {
    const file = { identity: { namespace: 'dev', serviceAccount: 'me', pod: 'laptop', labels: {} } };
    expect(resolveIdentity({}, file).identity.namespace).toBe('dev');
    expect(resolveIdentity({ POD_NAMESPACE: 'shop', POD_NAME: 'p', SERVICE_ACCOUNT: 's' }, file, () => '').identity.namespace).toBe('shop');
  });
});
