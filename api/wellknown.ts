// Names every part agrees on: ports, labels, annotations, environment variables, object names.

export const GROUP = 'thoughtgate.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const PORTS = {
  proxy: 7467,
  /** Reserved for inbound callbacks (e.g. interactive approvals); nothing listens yet. */
  callbacks: 7468,
  admin: 7469,
} as const;

export const LABELS = {
  /** On a namespace: "enabled" turns injection on. On a pod: "disabled" opts that pod out. */
  inject: 'thoughtgate.io/inject',
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
} as const;
export const INJECT_ENABLED = 'enabled';
export const INJECT_DISABLED = 'disabled';
export const MANAGED_BY = 'thoughtgate-operator';

export const ANNOTATIONS = {
  /** On a pod: also "disabled" opts it out (annotations are where most people look first). */
  inject: 'thoughtgate.io/inject',
  /** Set by the webhook once it has injected; makes the mutation idempotent. */
  injected: 'thoughtgate.io/injected',
  /** "true": the app containers also get HTTP_PROXY/NO_PROXY pointing at the sidecar. */
  forwardProxy: 'thoughtgate.io/forward-proxy',
  /** Content hash of the rendered config, on the ConfigMap. */
  configHash: 'thoughtgate.io/config-hash',
} as const;

export const CONFIGMAP_NAME = 'thoughtgate-config';
export const CONFIGMAP_KEY = 'config.yaml';
/**
 * The same ConfigMap's Cedar policies as the operator parsed them (api/crds.ts
 * RenderedCedarDocumentSchema), apart from config.yaml so that sidecars that do not read it (older
 * ones) still accept config.yaml.
 */
export const CONFIGMAP_CEDAR_KEY = 'cedar.json';

export const ENV = {
  config: 'THOUGHTGATE_CONFIG',
  port: 'THOUGHTGATE_PORT',
  adminPort: 'THOUGHTGATE_ADMIN_PORT',
  bind: 'THOUGHTGATE_BIND',
  adminBind: 'THOUGHTGATE_ADMIN_BIND',
  logLevel: 'THOUGHTGATE_LOG_LEVEL',
  /** Comma-separated Host names the listeners accept besides loopback and their bind address. */
  allowedHosts: 'THOUGHTGATE_ALLOWED_HOSTS',
  drainTimeout: 'THOUGHTGATE_DRAIN_TIMEOUT',
  /** Standalone: a directory of the sidecar's own where approvals survive a restart. */
  stateDir: 'THOUGHTGATE_STATE_DIR',
  /** Cluster mode: the ConfigMap to watch (namespace from POD_NAMESPACE). */
  configMap: 'THOUGHTGATE_CONFIGMAP',
  labelsFile: 'THOUGHTGATE_LABELS_FILE',
  /** Where the service-account token and CA are mounted, if not at the standard path. */
  serviceAccountDir: 'THOUGHTGATE_SERVICEACCOUNT_DIR',
  podName: 'POD_NAME',
  podNamespace: 'POD_NAMESPACE',
  serviceAccount: 'SERVICE_ACCOUNT',
  /** A captured pod: the listener the capture rules redirect plain HTTP to (api/capture.ts CAPTURE_PORTS). */
  transparentPort: 'THOUGHTGATE_TRANSPARENT_PORT',
  /** A captured pod: the TLS passthrough listener (outbound 443), when the rules redirect it. */
  tlsPort: 'THOUGHTGATE_TLS_PORT',
  /** A captured pod: the init container's state file, which /ready checks. */
  captureState: 'THOUGHTGATE_CAPTURE_STATE',
  /** Given to the app containers: where the agent reaches its MCP sources. */
  url: 'THOUGHTGATE_URL',
} as const;

/** An allowedHosts entry (config and --allowed-hosts): `name`, `name:port`, an IPv4 address or `[IPv6]`, optionally with a port. */
export const ALLOWED_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$/;
