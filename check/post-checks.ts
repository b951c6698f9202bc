// Post-install: every check over one snapshot, in the order they are shown.
import type { CheckResult, CheckSettings, PostSnapshot } from './model.js';
import { checkCrds, checkVersion } from './cluster-checks.js';
import { checkDeployment, checkLease } from './operator-checks.js';
import { checkCaBundle, checkCertificate, checkWebhookConfig } from './webhook-checks.js';
import { checkDecisionEnforced } from './decision-enforcement.js';
import { checkCapture, checkChannels, checkDecisionPolicy, checkNamespaces, checkPolicies, checkRequests } from './resource-checks.js';

export function postChecks(s: PostSnapshot, settings: CheckSettings): CheckResult[] {
  return [
    { id: 'kubernetes/reachable', group: 'kubernetes-api', status: 'ok', message: 'the API server answers' },
    checkVersion(s.version),
    ...checkCrds(s.crds),
    checkDeployment(s.deployment, s.namespace),
    checkLease(s.lease, s.installation, s.now),
    ...checkWebhookConfig(s.webhookConfigs, s.installation),
    checkCertificate(s.secret, s.installation, s.now, settings),
    checkCaBundle(s.webhookConfigs, s.secret, s.installation),
    ...checkNamespaces(s.namespaces, s.policies),
    ...checkPolicies(s.policies, s.configMaps),
    ...checkChannels(s.channels),
    checkDecisionPolicy(s.decisionPolicy),
    checkDecisionEnforced(s.decisionProbe, s.namespace),
    checkRequests(s.requests, s.now, settings),
    checkCapture(s.policies, s.namespaces),
  ];
}
