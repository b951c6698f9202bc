import { compileGlobs } from './glob.js';

describe('globs', () => {
  test.each([
    ['search_*', 'search_issues', true],
    ['search_*', 'search_', true],
    ['search_*', 'xsearch_issues', false],
    ['get_?', 'get_a', true],
    ['get_?', 'get_ab', false],
    ['file:///public/*', 'file:///public/a/b.txt', true],
    ['file:///public/*', 'file:///private/a', false],
    ['a.b', 'aXb', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['(x)+[y]', '(x)+[y]', true],
    ['exact', 'exact', true],
    ['exact', 'Exact', false],
  ])('%s against %s is %s', (glob, value, expected) => {
    expect(compileGlobs(glob)(value)).toBe(expected);
  });

  test('a list matches when any glob does; an empty list matches nothing; undefined matches all', () => {
    expect(compileGlobs(['a', 'b*'])('bee')).toBe(true);
    expect(compileGlobs(['a', 'b*'])('c')).toBe(false);
    expect(compileGlobs([])('anything')).toBe(false);
    expect(compileGlobs(undefined)('anything')).toBe(true);
  });

  test('case-insensitive matching is opt-in', () => {
    expect(compileGlobs(['*TOKEN*'], { caseInsensitive: true })('accessToken')).toBe(true);
    expect(compileGlobs(['Host.Example'], { caseInsensitive: true })('host.example')).toBe(true);
    expect(compileGlobs(['Host.Example'])('host.example')).toBe(false);
  });

  test('regex syntax in a glob is literal, so a glob cannot be a ReDoS pattern', () => {
    expect(compileGlobs('(a+)+$')('aaaa')).toBe(false);
    expect(compileGlobs('(a+)+$')('(a+)+$')).toBe(true);
  });
});
