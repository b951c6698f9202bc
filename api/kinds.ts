// The kinds of ThoughtGate's custom resources (group thoughtgate.io/v1alpha1), apart from their
// schemas (api/crds.ts, built at import): the sidecar's kube clients need the names only.
import { APPROVAL_REQUEST_KIND } from './approval-request.js';

export const KINDS = {
  GovernancePolicy: { kind: 'GovernancePolicy', plural: 'governancepolicies', singular: 'governancepolicy', shortNames: ['gp', 'gpol'] },
  ApprovalChannel: { kind: 'ApprovalChannel', plural: 'approvalchannels', singular: 'approvalchannel', shortNames: ['ac', 'achan'] },
  /** Created by sidecars, relayed by the operator: api/approval-request.ts. */
  ApprovalRequest: APPROVAL_REQUEST_KIND,
  /** A person's Approve or Reject from kubectl: api/approval-decision.ts. */
  ApprovalDecision: { kind: 'ApprovalDecision', plural: 'approvaldecisions', singular: 'approvaldecision', shortNames: ['adec'] },
} as const;
