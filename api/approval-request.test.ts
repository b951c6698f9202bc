// ApprovalRequest spec: the optional `a2a` block (where an A2A message goes: what the hash binds
// and the approver sees), as zod and the generated CRD take it.
import { ApprovalRequestSpecSchema } from './approval-request.js';
import { generateCrds, type K8sSchema } from '../scripts/gen-crds.js';

const spec = {
  channel: 'approvals',
  workload: { namespace: 'team-a', serviceAccount: 'agent', pod: 'agent-0' },
  source: 'billing-agent',
  method: 'SendMessage',
  protocol: 'a2a',
  tool: 'refund',
  arguments: { message: { messageId: 'm1' } },
  requestHash: 'a'.repeat(64),
  taskId: 'tgh-1',
  reason: 'rule refunds',
  expiresAt: '2030-01-01T00:10:00Z',
};
const parse = (a2a: unknown) => ApprovalRequestSpecSchema().safeParse({ ...spec, a2a });

describe('ApprovalRequest spec.a2a', () => {
  test('tenant (optional), version and binding are accepted; absent is fine (MCP, or written before it existed)', () => {
    expect(parse({ tenant: 'acme-eu', version: '1.0', binding: 'rest' })).toMatchObject({
      success: true,
      data: { a2a: { tenant: 'acme-eu', version: '1.0', binding: 'rest' } },
    });
    expect(parse({ version: '0.3', binding: 'jsonrpc' })).toMatchObject({ success: true, data: { a2a: { version: '0.3', binding: 'jsonrpc' } } });
    expect(ApprovalRequestSpecSchema().safeParse(spec).success).toBe(true);
  });

  test.each([
    ['an unknown version', { version: '2.0', binding: 'jsonrpc' }],
    ['an unknown binding', { version: '1.0', binding: 'grpc' }],
    ['no version', { binding: 'jsonrpc' }],
    ['an empty tenant (none is no field)', { tenant: '', version: '1.0', binding: 'jsonrpc' }],
    ['an unknown key', { version: '1.0', binding: 'jsonrpc', host: 'x' }],
  ])('refused: %s', (_what, a2a) => {
    expect(parse(a2a).success).toBe(false);
  });

  test('the CRD has the same block, and the spec immutability rule covers it', () => {
    type CrdSpec = { names: { kind: string }; versions: { schema: { openAPIV3Schema: K8sSchema } }[] };
    const crd = generateCrds().find((f) => (f.object.spec as CrdSpec).names.kind === 'ApprovalRequest')!.object.spec as CrdSpec;
    const specSchema = crd.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    expect(specSchema.properties!.a2a).toMatchObject({
      type: 'object',
      properties: { tenant: { type: 'string', minLength: 1 }, version: { enum: ['0.3', '1.0'] }, binding: { enum: ['jsonrpc', 'rest'] } },
      required: ['binding', 'version'],
    });
    const immutable = specSchema['x-kubernetes-validations']!.find((r) => r.message?.startsWith('spec is immutable'))!;
    expect(immutable.rule).toContain('has(self.a2a) == has(oldSelf.a2a) && (!has(self.a2a) || self.a2a == oldSelf.a2a)');
  });
});
