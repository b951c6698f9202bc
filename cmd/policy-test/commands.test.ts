// Finding test files in a directory: what a repository holds besides its own tests (node_modules,
// .git, symbolic link loops) is not searched.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTestFiles } from './commands.js';

test('a directory is searched for *.test.yaml and *.test.yml, not in node_modules or .git, not through links to directories', async () => {
  const d = mkdtempSync(join(tmpdir(), 'tg-find-tests-'));
  for (const sub of ['node_modules/dep', '.git/refs', 'team/nested']) mkdirSync(join(d, sub), { recursive: true });
  for (const f of ['a.test.yaml', 'node_modules/dep/x.test.yaml', '.git/refs/y.test.yaml', 'team/b.test.yml', 'team/nested/c.test.yaml', 'team/notes.yaml'])
    writeFileSync(join(d, f), 'cases: []\n');
  symlinkSync(d, join(d, 'team', 'loop')); // a loop back to the top
  symlinkSync(join(d, 'team', 'b.test.yml'), join(d, 'linked.test.yaml')); // a linked file is a file
  const found = await findTestFiles([d]);
  expect(found.errors).toEqual([]);
  expect(found.files.map((f) => f.slice(d.length + 1))).toEqual(['a.test.yaml', 'linked.test.yaml', 'team/b.test.yml', 'team/nested/c.test.yaml']);
  // Named on the command line, a directory of those names is searched: the user asked for it.
  expect((await findTestFiles([join(d, 'node_modules')])).files).toEqual([join(d, 'node_modules/dep/x.test.yaml')]);
});
