// People of the e2e cluster with their own credentials (not the admin's impersonation): kubeconfig
// files for a ServiceAccount (a token) or for a person (an x509 client certificate signed by the
// cluster's CA: CN is the username, O the groups, as the API server reads them).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { run } from '../cluster/cluster.js';
import { cluster, kubectl } from './k8s.js';

/** The admin's kubeconfig with `user` as the only user, written to `dir`/`name`.kubeconfig. */
async function kubeconfigWith(dir: string, name: string, namespace: string, user: Record<string, string>): Promise<string> {
  const kc = parseYaml(await kubectl(['config', 'view', '--raw', '--minify', '--flatten']));
  kc.users = [{ name, user }];
  kc.contexts = [{ name, context: { cluster: kc.clusters[0].name, user: name, namespace } }];
  kc['current-context'] = name;
  const file = join(dir, `${name}.kubeconfig`);
  writeFileSync(file, stringifyYaml(kc), { mode: 0o600 });
  return file;
}

/** A kubeconfig with a token of ServiceAccount `name` of `namespace`. */
export async function serviceAccountKubeconfig(dir: string, namespace: string, name: string): Promise<string> {
  const token = (await kubectl(['create', 'token', name, '-n', namespace, '--duration=1h'])).trim();
  return kubeconfigWith(dir, name, namespace, { token });
}

/** A kubeconfig of the person `username` in `groups` (a client certificate valid for a day). */
export async function userKubeconfig(dir: string, namespace: string, username: string, groups: readonly string[] = []): Promise<string> {
  const env = cluster().env;
  const caKey = env['THOUGHTGATE_K8S_CA_KEY_FILE'];
  if (!caKey) throw new Error('the e2e cluster did not say where its CA key is (THOUGHTGATE_K8S_CA_KEY_FILE)');
  const base = join(dir, `user-${username}`);
  const ok = async (args: string[]) => {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  await ok(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`]);
  const subject = `${groups.map((g) => `/O=${g}`).join('')}/CN=${username}`;
  await ok(['req', '-new', '-key', `${base}.key`, '-subj', subject, '-out', `${base}.csr`]);
  writeFileSync(`${base}.ext`, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  await ok([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    cluster().caFile,
    '-CAkey',
    caKey,
    '-set_serial',
    `0x${Date.now().toString(16)}`,
    '-days',
    '1',
    '-sha256',
    '-extfile',
    `${base}.ext`,
    '-out',
    `${base}.crt`,
  ]);
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return kubeconfigWith(dir, username, namespace, { 'client-certificate-data': b64(`${base}.crt`), 'client-key-data': b64(`${base}.key`) });
}
