// Runs inside a pod's network namespace (ip netns exec): plain TCP forwards, one per argument
// "listenHost:listenPort=targetHost:targetPort". Prints "ready" once every listener is bound.
// Used both ways: the test reaching a port the sidecar binds to the pod's loopback (what
// `kubectl port-forward` does), and the pod reaching services the test runs on the host's
// loopback (the API server, MCP upstreams) through the host end of the pod's veth.
import net from 'node:net';

const split = (hp) => {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i), Number(hp.slice(i + 1))];
};
await Promise.all(
  process.argv.slice(2).map((arg) => {
    const [from, to] = arg.split('=').map(split);
    const server = net.createServer((a) => {
      const b = net.connect(to[1], to[0]);
      a.pipe(b).pipe(a);
      a.on('error', () => b.destroy());
      b.on('error', () => a.destroy());
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(from[1], from[0], resolve);
    });
  }),
);
process.stdout.write('ready\n');
