// undici's Pool and request API imported by file path: the package index also loads the mock
// agents, caches, WebSocket and fetch, which costs every sidecar ~7 MiB RSS it never uses
// (docs/performance.md). The index only wires these same functions onto Dispatcher.prototype.
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolImpl: typeof Pool;
  export default PoolImpl;
}
declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  function request(this: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export default request;
}
declare module 'undici/lib/core/connect.js' {
  import type { buildConnector as BuildConnector } from 'undici';
  function buildConnector(opts: BuildConnector.BuildOptions): BuildConnector.connector;
  export default buildConnector;
}
declare module 'undici/lib/core/util.js' {
  /** undici's raw header list ([name, value, …] as Buffers) as the object request() gives. */
  export function parseHeaders(raw: Buffer[]): Record<string, string | string[] | undefined>;
}
