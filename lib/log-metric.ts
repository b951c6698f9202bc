// The dropped-lines counter of the stdout writer (lib/log.ts), for the sidecar's and the operator's
// /metrics: the writer is the process's, so each scrape reads its count.
import { Counter, type Registry } from 'prom-client';
import { logLinesDropped } from './log.js';

export function logLinesDroppedCounter(prefix: string, registry: Registry): Counter {
  return new Counter({
    name: `${prefix}log_lines_dropped_total`,
    help: 'Log lines dropped because stdout was slower than the log (more than 1 MiB waiting): its reader is stalled or slow',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(logLinesDropped());
    },
  });
}
