// One raw exchange over TCP: for bytes no HTTP client would send (odd Host headers, request
// smuggling, pipelining, not HTTP at all). Resolves with everything received once the peer closes,
// or after limitMs (so a hung exchange fails its assertions instead of the suite's timeout).
import net from 'node:net';

export function exchange(port: number, bytes: string | Buffer, limitMs = 5000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(port, host, () => s.write(bytes));
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    setTimeout(() => s.destroy(), limitMs).unref();
  });
}
