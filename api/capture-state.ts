// The zod schemas of capture's records: the init container's state file and the operator's report.
// Apart from api/capture.ts so that loading capture's names (cli.ts does, for every subcommand)
// does not load zod: measured, that static import cost the idle sidecar ~3.5 MiB of RSS.
import { z } from 'zod';
import { lazy } from '../lib/lazy.js';
import { DNS_MODES } from './capture.js';

/** What the init container leaves in CAPTURE_STATE_FILE for the sidecar's /ready. */
export const CaptureStateSchema = lazy(() =>
  z.object({
    version: z.literal(1),
    backend: z.enum(['nft', 'legacy']),
    families: z.array(z.enum(['ipv4', 'ipv6'])),
    spec: z.object({
      uid: z.number().int(),
      redirectPorts: z.array(z.number().int()),
      transparentPort: z.number().int(),
      tlsPort: z.number().int().nullable(),
      dns: z.enum(DNS_MODES),
      exceptions: z.array(z.object({ cidr: z.string(), family: z.union([z.literal(4), z.literal(6)]), port: z.number().int().nullable() })),
    }),
    /** sha256 of the rules as applied (both families). */
    rulesHash: z.string(),
    installedAt: z.string(),
    durationMs: z.number(),
  }),
);
export type CaptureState = z.infer<ReturnType<typeof CaptureStateSchema>>;

/** Per namespace, written into the status of each of its GovernancePolicies. */
export const CaptureReportSchema = lazy(() =>
  z.object({
    /** "captured/injected", the `Captured` column of `kubectl get governancepolicies`. */
    summary: z.string(),
    captured: z.number().int(),
    notCaptured: z.number().int(),
    /** Captured pods admitted with a container that could walk around capture (capture.allowBypassablePods). */
    bypassable: z.number().int(),
    capturedPods: z.array(z.string()),
    notCapturedPods: z.array(z.string()),
    bypassablePods: z.array(z.string()),
  }),
);
export type CaptureReport = z.infer<ReturnType<typeof CaptureReportSchema>>;
