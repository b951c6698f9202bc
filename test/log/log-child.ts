// A process that logs through the default stdout writer (lib/log.ts) and answers over HTTP, so a
// test can stall, drain or redirect its stdout. Its port goes to stderr as "port <n>".
// GET /log?n=&size=&bursts=  logs n lines of about `size` characters (seq numbered), in `bursts`
//                            event-loop turns; answers after the last, with /state's fields;
//                            &paced=1: a burst waits until less than half the bound is queued
//                            (a logger that stdout keeps up with, however slow the reader is)
// GET /state                 { queued, dropped, ticks, rss } (ticks: a 10 ms interval's count)
// GET /exit?n=               logs n lines and exits in the same turn
import { createServer } from 'node:http';
import { createLogger, logLinesDropped, stdoutWriter } from '../../lib/log.js';
import { DEFAULT_MAX_QUEUED_BYTES } from '../../lib/log-writer.js';

const log = createLogger('info');
let seq = 0;
let ticks = 0;
setInterval(() => ticks++, 10);
const state = () => ({ queued: stdoutWriter().queued(), dropped: logLinesDropped(), ticks, seq, rss: process.memoryUsage().rss });
const logLines = (n: number, pad: string) => {
  for (let i = 0; i < n; i++) log.info('line', { seq: seq++, pad });
};

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const num = (k: string, d: number) => Number(url.searchParams.get(k) ?? d);
  const reply = () => res.end(JSON.stringify(state()));
  const pad = 'x'.repeat(num('size', 100));
  if (url.pathname === '/log') {
    let bursts = num('bursts', 1);
    const per = Math.ceil(num('n', 1) / bursts);
    const paced = url.searchParams.get('paced') === '1';
    const step = () => {
      if (paced && stdoutWriter().queued() > DEFAULT_MAX_QUEUED_BYTES / 2) return void setTimeout(step, 1);
      logLines(per, pad);
      if (--bursts > 0) setImmediate(step);
      else reply();
    };
    step();
  } else if (url.pathname === '/exit') {
    logLines(num('n', 1), pad);
    process.exit(0);
  } else reply();
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stderr.write(`port ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.once('SIGTERM', () => process.exit(0));
