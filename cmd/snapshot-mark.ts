// Imported first by cmd/sidecar-snapshot.ts: tells cli.ts that it is being loaded into a startup
// snapshot, so it leaves running the command to the snapshot's main function.
(globalThis as Record<symbol, unknown>)[Symbol.for('thoughtgate.snapshot')] = true;
