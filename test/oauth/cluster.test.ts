// In a cluster, an OAuth client secret is a credential like a header's: its Secret is mounted into
// the sidecar container (the webhook's policyNeeds), and a GovernancePolicy may name it only by
// secretKeyRef (file and env would let policy authors send the sidecar's own files to a token
// endpoint of their choosing).
import { clusterCredentialIssues, PolicyDocumentSchema } from '../../api/config.js';
import { policyNeeds } from '../../webhook/policy-needs.js';

const source = (clientSecret: unknown) => ({
  name: 'gh',
  url: 'https://mcp.example.com/mcp',
  auth: { mode: 'clientCredentials', clientId: 'agent', clientSecret },
});

test('the webhook mounts the Secret an OAuth client secret names', () => {
  const policies = [{ spec: { sources: [source({ valueFrom: { secretKeyRef: { name: 'mcp-oauth', key: 'client-secret' } } })] } }];
  expect(policyNeeds(policies, {}).secrets).toEqual(['mcp-oauth']);
});

test('a GovernancePolicy may not take the client secret from a file or the environment', () => {
  for (const valueFrom of [{ file: '/var/run/secrets/kubernetes.io/serviceaccount/token' }, { env: 'HOME' }]) {
    const doc = PolicyDocumentSchema.parse({ sources: [source({ valueFrom })] });
    expect(clusterCredentialIssues(doc)).toEqual([
      {
        path: ['sources', 0, 'auth', 'clientSecret', 'valueFrom', Object.keys(valueFrom)[0]],
        message: expect.stringContaining('only allowed in a standalone thoughtgate.yaml'),
      },
    ]);
  }
  const ok = PolicyDocumentSchema.parse({ sources: [source({ valueFrom: { secretKeyRef: { name: 'mcp-oauth', key: 'client-secret' } } })] });
  expect(clusterCredentialIssues(ok)).toEqual([]);
});
