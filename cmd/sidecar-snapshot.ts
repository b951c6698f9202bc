// The entry of the sidecar's startup snapshot (scripts/build-snapshot.mjs): loaded once at image
// build time with everything the sidecar's start path needs already evaluated, then each start
// deserializes the heap instead of loading and evaluating the bundle.
import './snapshot-mark.js';
import { startupSnapshot } from 'node:v8';
import { Registry } from 'prom-client';
import { parseConfigText } from '../policy/config/load.js';
import { run } from '../cli.js';

// Evaluated now, into the snapshot: zod and the config schemas, yaml, prom-client. Not undici nor
// the sidecar's own modules: they load node:http and node:http2, whose native state a snapshot
// cannot hold (building fails), so they are evaluated at each start as before.
void [Registry, parseConfigText];

// Deserialized: argv is [node, ...args] (no script), and the environment is the pod's.
startupSnapshot.setDeserializeMainFunction(() => run(process.argv.slice(1)));
