// Moved to lib/destination.ts (policy/ canonicalises A2A url-part hosts with it too); kept so sidecar imports stay put.
export * from '../../lib/destination.js';
