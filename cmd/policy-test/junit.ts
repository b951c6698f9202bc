// JUnit XML of a test run, the format CI systems (GitLab, Jenkins, GitHub reporters) read:
// testsuites > testsuite per file > testcase per case, with <failure> (a case failed, or what it
// tests is invalid) or <error> (the test file could not be used). Pure.
import { formatExplanation, totals } from './report.js';
import type { FileResult } from './run.js';

// Characters XML 1.0 cannot carry at all, even escaped: C0 controls but tab, LF, CR; lone
// surrogates; U+FFFE and U+FFFF. Replaced, so a hostile tool name cannot break the report.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text for an attribute value or element content (both quote characters escaped, so either context is safe). */
export function xmlText(s: string): string {
  return s
    .replace(NOT_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;');
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);
const attrs = (a: Record<string, string | number>) =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlText(String(v))}"`)
    .join('');

function suite(r: FileResult): string {
  const head = (tests: number, failures: number, errors: number) =>
    `  <testsuite${attrs({ name: r.file, tests, failures, errors, skipped: 0, time: seconds(r.durationMs) })}>`;
  if (r.kind !== 'ran') {
    const tag = r.kind === 'error' ? 'error' : 'failure';
    const message = r.kind === 'error' ? 'the test file could not be used' : 'the config or policy under test is invalid';
    return [
      head(1, tag === 'failure' ? 1 : 0, tag === 'error' ? 1 : 0),
      `    <testcase${attrs({ name: 'load', classname: r.file, time: seconds(r.durationMs) })}>`,
      `      <${tag}${attrs({ message, type: r.kind })}>${xmlText(r.errors.join('\n'))}</${tag}>`,
      '    </testcase>',
      '  </testsuite>',
    ].join('\n');
  }
  const failures = r.cases.filter((c) => !c.passed).length;
  const lines = [head(r.cases.length, failures, 0)];
  for (const c of r.cases) {
    const open = `    <testcase${attrs({ name: c.name, classname: r.file, time: seconds(c.durationMs) })}`;
    if (c.passed) {
      lines.push(`${open}/>`);
      continue;
    }
    const body = `${c.at}\n${c.failures.join('\n')}\n\n${formatExplanation(c.explanation)}`;
    lines.push(
      `${open}>`,
      `      <failure${attrs({ message: c.failures[0] ?? 'failed', type: 'PolicyTestFailure' })}>${xmlText(body)}</failure>`,
      '    </testcase>',
    );
  }
  lines.push('  </testsuite>');
  return lines.join('\n');
}

export function junitXml(results: readonly FileResult[]): string {
  const t = totals(results);
  const time = results.reduce((s, r) => s + r.durationMs, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'thoughtgate test', tests: t.cases + t.invalid + t.errors, failures: t.failed + t.invalid, errors: t.errors, time: seconds(time) })}>`,
    ...results.map(suite),
    '</testsuites>',
    '',
  ].join('\n');
}
