// Config warnings: an A2A rule or Cedar policy on one Send method but not the other, and a Cedar
// action in 0.3's spelling (never matches).
import { ConfigFileSchema } from '../../api/config.js';
import { cedarA2aWarnings, configWarnings } from './warnings.js';

const rules = (...methods: (string | string[])[]) =>
  ConfigFileSchema.parse({ sources: [], rules: methods.map((method) => ({ match: { method }, action: 'deny' })) });

describe('configWarnings: rules', () => {
  test('a rule on SendMessage alone warns: streaming skips it', () => {
    const w = configWarnings(rules('SendMessage'));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^rules\[0\]: match\.method covers SendMessage but not SendStreamingMessage/);
  });
  test("either generation's spelling, and the other way round", () => {
    expect(configWarnings(rules('message/send'))).toHaveLength(1);
    expect(configWarnings(rules('message/stream'))[0]).toMatch(/covers SendStreamingMessage but not SendMessage/);
  });
  test('both, a glob over both, or neither: no warning', () => {
    expect(configWarnings(rules(['SendMessage', 'message/stream'], 'Send*', 'message/*', 'tools/call', 'GetTask'))).toEqual([]);
    expect(configWarnings(ConfigFileSchema.parse({ sources: [], rules: [{ match: { tool: 'x' }, action: 'deny' }] }))).toEqual([]);
  });
  test('a named rule is named', () => {
    const c = ConfigFileSchema.parse({ sources: [], rules: [{ name: 'refunds', match: { method: 'SendMessage' }, action: 'deny' }] });
    expect(configWarnings(c)[0]).toMatch(/^refunds: /);
  });
});

describe('cedarA2aWarnings', () => {
  test('a 0.3 spelling as an action never matches', () => {
    const w = cedarA2aWarnings('forbid(principal, action == ThoughtGate::Action::"message/send", resource);');
    expect(w).toContainEqual(expect.stringMatching(/^cedar policy at 1:1: action "message\/send" never matches: .*"SendMessage"/));
  });
  test('one Send method without the other warns, per policy', () => {
    const text = [
      'permit(principal, action in [ThoughtGate::Action::"SendMessage", ThoughtGate::Action::"SendStreamingMessage"], resource);',
      '// a comment; with a semicolon',
      '@approve("slack")',
      'permit(principal, action == ThoughtGate::Action::"SendMessage", resource) when { context.skill == "refund;" };',
    ].join('\n');
    const w = cedarA2aWarnings(text);
    expect(w).toEqual([expect.stringMatching(/^cedar policy at 3:1: names action "SendMessage" but not "SendStreamingMessage"/)]);
  });
  test('no A2A action, no warning', () => {
    expect(cedarA2aWarnings('permit(principal, action == ThoughtGate::Action::"tools/call", resource);')).toEqual([]);
    expect(cedarA2aWarnings('')).toEqual([]);
  });
  test('configWarnings reads cedar.policies', () => {
    const c = ConfigFileSchema.parse({
      sources: [],
      rules: [{ match: {}, action: 'policy' }],
      cedar: { policies: 'permit(principal, action == ThoughtGate::Action::"SendStreamingMessage", resource);' },
    });
    expect(configWarnings(c)).toHaveLength(1);
  });
});

describe('configWarnings: rate limits', () => {
  const limits = (...match: object[]) => ConfigFileSchema.parse({ sources: [], rateLimits: match.map((m) => ({ match: m, perMinute: 1, burst: 1 })) });

  test('a limit whose method names no A2A method counts nothing; one Send method alone is skipped by the other', () => {
    expect(configWarnings(limits({ method: 'tools/call' }))).toEqual([expect.stringMatching(/^rateLimits\[0\]: match.method names no A2A method/)]);
    expect(configWarnings(limits({ method: 'message/send' }))).toEqual([expect.stringMatching(/covers SendMessage but not SendStreamingMessage/)]);
    expect(configWarnings(limits({ method: ['SendMessage', 'message/stream'] }, { method: 'Send*' }, { method: 'GetTask' }, { skill: 'x' }, {}))).toEqual([]);
  });
});
