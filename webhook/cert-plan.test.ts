// The create / keep / rotate decision for the CA in the Secret, the trust bundle's overlap, and
// when a replica signs its serving certificate again. The I/O half runs against a real apiserver
// in e2e/webhook.test.ts.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { planCa, planServing, renewAt, splitPemBundle, trustBundle, webhookSans, type CaFiles } from './cert-plan.js';
import { BACKDATE_MS, issueCa, issueServing } from './x509.js';

const DAY = 24 * 3600 * 1000;
const now = new Date('2026-11-21T10:00:00Z');
const at = (days: number) => new Date(now.getTime() + days * DAY);
// Long enough that the tests below see expiry, not the end of the overlap, unless they say so.
const OVERLAP = 100 * DAY;
const sans = webhookSans('thoughtgate-webhook', 'thoughtgate-system', ['127.0.0.1']);
let ca: CaFiles;
let older: CaFiles;

beforeAll(async () => {
  const c = await issueCa({ now, validityMs: 365 * DAY });
  ca = { ...c, bundle: c.cert };
  const o = await issueCa({ now: at(-300), validityMs: 365 * DAY });
  older = { ...o, bundle: o.cert };
});

describe('webhookSans', () => {
  it('has the Service names the apiserver dials, plus extras split into DNS and IP', () => {
    expect(webhookSans('tg', 'ns', ['127.0.0.1', 'localhost', '127.0.0.1', 'tg.ns.svc'])).toEqual({
      dnsNames: ['tg.ns.svc', 'tg.ns.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1'],
    });
  });
});

describe('renewAt', () => {
  it('is two thirds into the lifetime (from the backdated notBefore)', () => {
    const c = new X509Certificate(ca.cert);
    const from = now.getTime() - BACKDATE_MS;
    expect(renewAt(c).getTime()).toBe(from + Math.floor(((now.getTime() + 365 * DAY - from) * 2) / 3));
  });
});

describe('trustBundle', () => {
  it('puts the signing CA first, keeps earlier CAs while valid, each once, and drops what is not a valid CA', async () => {
    const leaf = (await issueServing({ ca, sans, now, validityMs: DAY })).cert;
    expect(trustBundle(ca.cert, older.cert + ca.cert + older.cert + leaf, now, OVERLAP)).toBe(ca.cert + older.cert);
    // older expires on day 65.
    expect(trustBundle(ca.cert, older.cert, at(64), OVERLAP)).toBe(ca.cert + older.cert);
    expect(trustBundle(ca.cert, older.cert, at(66), OVERLAP)).toBe(ca.cert);
    expect(trustBundle(ca.cert, 'garbage', now, OVERLAP)).toBe(ca.cert);
  });

  it('drops the CAs the signing one replaced once the overlap after its issue is over, valid or not', () => {
    // ca was issued now (backdated 5 min); a week's overlap.
    expect(trustBundle(ca.cert, older.cert, at(6.99), 7 * DAY)).toBe(ca.cert + older.cert);
    expect(trustBundle(ca.cert, older.cert, at(7), 7 * DAY)).toBe(ca.cert);
    expect(planCa({ ...ca, bundle: ca.cert + older.cert }, at(6), 7 * DAY).action).toBe('keep');
    expect(planCa({ ...ca, bundle: ca.cert + older.cert }, at(7), 7 * DAY)).toMatchObject({ action: 'rebundle', bundle: ca.cert });
  });
});

describe('planCa', () => {
  it('creates when there is no Secret, keeps a good CA until two thirds of its life', () => {
    expect(planCa(undefined, now, OVERLAP)).toEqual({ action: 'create', reason: 'no CA yet' });
    expect(planCa(ca, now, OVERLAP)).toMatchObject({ action: 'keep', renewAt: renewAt(new X509Certificate(ca.cert)) });
    expect(planCa(ca, at(243), OVERLAP).action).toBe('keep');
  });

  it('rotates after two thirds of its life, keeping the outgoing CA in the bundle (the overlap)', () => {
    const p = planCa(ca, at(244), OVERLAP);
    expect(p).toMatchObject({ action: 'rotate', reason: expect.stringMatching(/^CA due for renewal since /) });
    expect(p.action === 'rotate' && p.keep).toBe(ca.cert);
    // The same CA long expired: nothing of it is kept.
    const late = planCa(ca, at(400), OVERLAP);
    expect(late.action === 'rotate' && late.keep).toBe('');
  });

  it('rotates a CA that cannot sign, keeping what was trusted', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cases: Array<[CaFiles, RegExp]> = [
      [{ ...ca, cert: '' }, /^tls\.crt holds no certificate$/],
      [{ ...ca, key: older.key }, /^tls\.key does not match tls\.crt$/],
      [{ ...ca, key: rsa }, /^tls\.key is not an ECDSA P-256 key \(rsa\)$/],
      [{ ...ca, key: 'nope' }, /^unreadable tls\.key/],
    ];
    for (const [files, reason] of cases) {
      const p = planCa(files, now, OVERLAP);
      expect(p).toMatchObject({ action: 'rotate', reason: expect.stringMatching(reason) });
      expect(p.action === 'rotate' && p.keep).toBe(ca.cert);
    }
  });

  it('rotates the layout of earlier versions (serving certificate in tls.crt, CA in ca.crt), keeping that CA trusted', async () => {
    const leaf = await issueServing({ ca: older, sans, now, validityMs: 30 * DAY });
    const p = planCa({ cert: leaf.cert, key: leaf.key, bundle: older.cert }, now, OVERLAP);
    expect(p).toMatchObject({ action: 'rotate', reason: expect.stringMatching(/not a CA/) });
    expect(p.action === 'rotate' && p.keep).toBe(older.cert);
  });

  it('rewrites ca.crt when it lacks the signing CA or holds an expired one', () => {
    expect(planCa({ ...ca, bundle: older.cert }, now, OVERLAP)).toEqual({ action: 'rebundle', reason: expect.any(String), bundle: ca.cert + older.cert });
    expect(planCa({ ...ca, bundle: '' }, now, OVERLAP)).toMatchObject({ action: 'rebundle', bundle: ca.cert });
    expect(planCa({ ...ca, bundle: ca.cert + older.cert }, at(66), OVERLAP)).toMatchObject({ action: 'rebundle', bundle: ca.cert });
    expect(planCa({ ...ca, bundle: ca.cert + older.cert }, at(64), OVERLAP).action).toBe('keep');
  });
});

describe('planServing', () => {
  it('issues when there is none, keeps until two thirds of its life, then renews', async () => {
    expect(planServing(undefined, ca.cert, sans, now)).toEqual({ action: 'issue', reason: 'no serving certificate yet' });
    const s = await issueServing({ ca, sans, now, validityMs: 6 * DAY });
    const due = renewAt(new X509Certificate(s.cert));
    // 6 days + 5 min backdated: renewal a little before day 4.
    expect(due.getTime() - now.getTime()).toBe(Math.floor(((6 * DAY + BACKDATE_MS) * 2) / 3) - BACKDATE_MS);
    expect(planServing(s.cert, ca.cert, sans, at(3))).toEqual({ action: 'keep', renewAt: due });
    expect(planServing(s.cert, ca.cert, sans, new Date(due.getTime() - 1)).action).toBe('keep');
    expect(planServing(s.cert, ca.cert, sans, due)).toEqual({ action: 'issue', reason: `due for renewal since ${due.toISOString()}` });
    expect(planServing(s.cert, ca.cert, sans, at(10)).action).toBe('issue');
  });

  it('issues again when the CA changed (rotation) or names are missing; extra names are fine', async () => {
    const s = await issueServing({ ca, sans, now, validityMs: 6 * DAY });
    expect(planServing(s.cert, older.cert, sans, now)).toEqual({ action: 'issue', reason: 'signed by another CA' });
    expect(planServing(s.cert, ca.cert, webhookSans('thoughtgate-webhook', 'other-ns'), now)).toEqual({
      action: 'issue',
      reason: 'names missing: thoughtgate-webhook.other-ns.svc, thoughtgate-webhook.other-ns.svc.cluster.local',
    });
    expect(planServing(s.cert, ca.cert, webhookSans('thoughtgate-webhook', 'thoughtgate-system', ['10.0.0.1']), now)).toMatchObject({
      action: 'issue',
      reason: 'names missing: 10.0.0.1',
    });
    expect(planServing(s.cert, ca.cert, webhookSans('thoughtgate-webhook', 'thoughtgate-system'), now).action).toBe('keep');
  });
});

describe('splitPemBundle', () => {
  it('splits a bundle into certificates, each ending in a newline', () => {
    expect(splitPemBundle(ca.cert + older.cert.trimEnd())).toEqual([ca.cert, older.cert]);
    expect(splitPemBundle('')).toEqual([]);
  });
});
