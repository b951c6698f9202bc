import { impersonationHeaders, impersonationOfUser, mergeImpersonation } from './impersonation.js';

describe('impersonation as kubectl does it', () => {
  test("a kubeconfig user's as, as-uid, as-groups and as-user-extra become Impersonate-* headers", () => {
    const i = impersonationOfUser(
      { as: 'alice', 'as-uid': 'u-1', 'as-groups': ['oncall', 'dev'], 'as-user-extra': { 'scopes.example.com/a b': ['x', 'y'], plain: ['z'] } },
      'admin',
    );
    expect(impersonationHeaders(i)).toEqual({
      'impersonate-user': 'alice',
      'impersonate-uid': 'u-1',
      'impersonate-group': ['oncall', 'dev'],
      // client-go's escaping of extra keys: bytes outside the header token set are %XX.
      'impersonate-extra-scopes.example.com%2Fa%20b': ['x', 'y'],
      'impersonate-extra-plain': ['z'],
    });
  });

  test('values are sent as their UTF-8 bytes, as kubectl sends them (the string holds one byte per character)', () => {
    const h = impersonationHeaders({ user: 'jürgen', uid: '工藤', groups: ['開発', 'dev'], extra: { ключ: ['значение'] } });
    const bytes = (v: string | string[] | undefined) => [v ?? []].flat().map((x) => Buffer.from(x, 'latin1').toString('hex'));
    expect(bytes(h['impersonate-user'])).toEqual([Buffer.from('jürgen').toString('hex')]);
    expect(bytes(h['impersonate-uid'])).toEqual([Buffer.from('工藤').toString('hex')]);
    expect(bytes(h['impersonate-group'])).toEqual([Buffer.from('開発').toString('hex'), Buffer.from('dev').toString('hex')]);
    expect(bytes(h['impersonate-extra-%D0%BA%D0%BB%D1%8E%D1%87'])).toEqual([Buffer.from('значение').toString('hex')]);
  });

  test('no impersonation: no headers', () => {
    expect(impersonationHeaders(impersonationOfUser(undefined, 'u'))).toEqual({});
    expect(impersonationHeaders(impersonationOfUser({ as: '', 'as-groups': [] }, 'u'))).toEqual({});
  });

  test('the command line overrides the kubeconfig field by field', () => {
    const k = { user: 'alice', groups: ['dev'], uid: 'u-1', extra: { k: ['v'] } };
    expect(mergeImpersonation(k, { user: 'bob' })).toEqual({ user: 'bob', groups: ['dev'], uid: 'u-1', extra: { k: ['v'] } });
    expect(mergeImpersonation(k, { groups: ['ops', 'sre'] })).toEqual({ ...k, groups: ['ops', 'sre'] });
    expect(mergeImpersonation({}, { user: 'carol', uid: 'u-9' })).toEqual({ user: 'carol', uid: 'u-9' });
  });

  test.each<[string, Parameters<typeof impersonationHeaders>[0], RegExp]>([
    ['groups without a user', { groups: ['oncall'] }, /needs a user to impersonate/],
    ['a uid without a user', { uid: 'u' }, /needs a user to impersonate/],
    ['a newline in a name', { user: 'a\r\nX-Evil: 1' }, /control characters/],
    ['a newline in a group', { user: 'a', groups: ['g\n'] }, /"g\\n" \(--as-group \(or the kubeconfig user's "as-groups"\)\) has control characters/],
    ['a lone surrogate in a name', { user: 'a\ud800' }, /\(--as \(or the kubeconfig user's "as"\)\) is not valid Unicode/],
  ])('%s cannot be sent', (_what, i, message) => {
    expect(() => impersonationHeaders(i)).toThrow(message);
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    ['as not a string', { as: 5 }, /kubeconfig user "me": as must be a string/],
    ['as-groups not a list', { 'as-groups': 'oncall' }, /as-groups must be a list of strings/],
    ['as-user-extra values not lists', { 'as-user-extra': { k: 'v' } }, /as-user-extra.k must be a list of strings/],
  ])('a malformed kubeconfig (%s) is named', (_what, user, message) => {
    expect(() => impersonationOfUser(user, 'me')).toThrow(message);
  });
});
