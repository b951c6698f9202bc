// The Slack message for a pending approval, and its final ("outcome") form for chat.update. Pure.
//
// Slack limits we stay within (Block Kit reference and the chat.postMessage docs):
//   - at most 50 blocks per message;
//   - section text ≤ 3000 characters; section fields ≤ 10, each ≤ 2000;
//   - header text (plain_text) ≤ 150; context blocks ≤ 10 elements; block_id ≤ 255;
//   - all block text together: Slack refuses large messages with msg_blocks_too_long at roughly
//     12,000 characters (undocumented; observed by others), so we keep the total under 10,000;
//   - top-level `text` (the notification/fallback text): Slack truncates at 40,000 and may split
//     messages over 4,000, so we keep it ≤ 4,000. It never contains the arguments, so no secret
//     can leak through notifications even where redaction globs miss one.
// Everything the agent controls (tool name, arguments, ids, reasons) is shown as code (inline code
// or a code block, where Slack applies no *bold*, _italic_, ~strike~ or links), mrkdwn-escaped
// (&, <, >: no <!channel>, <@U…> or <http://…|text>), with backticks that could close the code
// neutralised, and with invisible and bidirectional characters escaped visibly (visible.ts).
import { redactArguments } from './redact.js';
import { escapeInvisible, visibleText } from './visible.js';

export const SLACK_LIMITS = {
  blocks: 50,
  sectionText: 3000,
  fieldText: 2000,
  fields: 10,
  headerText: 150,
  contextElements: 10,
  blockId: 255,
  /** Our own cap on all block text together (Slack's undocumented limit is about 12,000). */
  totalBlockText: 10_000,
  /** Our cap on the fallback `text`. */
  fallbackText: 4000,
} as const;

/** Arguments get at most this many characters (escaped), over at most ARG_BLOCKS sections. */
export const ARG_BUDGET = 7500;
export const ARG_BLOCKS = 3;
/** Approvers listed by name in the instructions; the rest are counted. */
const MAX_LISTED_APPROVERS = 20;

export interface TextObject {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}
export interface ButtonElement {
  type: 'button';
  action_id: string;
  /** The approval id; the receiver looks the approval up and checks the message, never trusts this alone. */
  value: string;
  text: TextObject;
  style?: 'primary' | 'danger';
  confirm?: { title: TextObject; text: TextObject; confirm: TextObject; deny: TextObject };
}
export type Block =
  | { type: 'header'; block_id?: string; text: TextObject }
  | { type: 'section'; block_id?: string; text?: TextObject; fields?: TextObject[] }
  | { type: 'context'; block_id?: string; elements: TextObject[] }
  | { type: 'actions'; block_id?: string; elements: ButtonElement[] }
  | { type: 'divider'; block_id?: string };

/** action_id of the buttons; the Socket Mode receiver maps them back (socket-mode.ts). */
export const APPROVE_ACTION_ID = 'thoughtgate_approve';
export const REJECT_ACTION_ID = 'thoughtgate_reject';
export const ACTIONS_BLOCK_ID = 'thoughtgate_decide';

export interface SlackMessage {
  /** Fallback/notification text (≤ 4000, no arguments). */
  text: string;
  blocks: Block[];
  metadata: { event_type: string; event_payload: Record<string, string> };
}

export interface ApprovalMessageInput {
  /** The approval request id (ApprovalRequest name or sidecar task id). */
  id: string;
  tool: string;
  source: string;
  /** MCP method, e.g. tools/call; for A2A the canonical method (SendMessage, SendStreamingMessage). */
  method?: string;
  /** a2a: an A2A message to an agent (`tool` is the skill it names, or ""); absent: an MCP tool call. */
  protocol?: 'mcp' | 'a2a';
  /**
   * With protocol a2a: where the message goes, which the approval is bound to: the tenant (absent
   * or "": none; agent-controlled text), the A2A version and the binding.
   */
  a2a?: A2aTargetView;
  arguments?: unknown;
  workload: { namespace: string; serviceAccount: string; pod: string };
  expiresAt: Date | number;
  reactions: { approve: readonly string[]; reject: readonly string[] };
  approvers: { users: readonly string[]; userGroups: readonly string[]; required?: number };
  /** Approve/Reject buttons (the channel has an app-level token: clicks arrive over Socket Mode) instead of reactions. */
  buttons?: boolean;
  /** Approvers who approved so far, while fewer than `approvers.required` did ("1 of 2 approvals"). */
  approvedBy?: readonly { id: string; name?: string }[];
  /** Key globs whose values are hidden (ApprovalChannel `redact`). */
  redact?: readonly string[];
  /** The rule or Cedar policy that asked for approval. */
  rule?: string;
}

export interface A2aTargetView {
  tenant?: string;
  version: '0.3' | '1.0';
  binding: 'jsonrpc' | 'rest';
}

export type FinalStatus = 'approved' | 'rejected' | 'expired' | 'cancelled' | 'failed';

export interface ApprovalOutcome {
  status: FinalStatus;
  /** Who decided (approved/rejected); names are optional display names. */
  by?: readonly { id: string; name?: string }[];
  at: Date | number;
  /** Why, for cancelled/failed (shown escaped). */
  reason?: string;
}

export const METADATA_EVENT_TYPE = 'thoughtgate_approval';

/** Escapes the three characters Slack mrkdwn reserves. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The largest cut position ≤ max that splits neither a surrogate pair nor an &entity;. */
function safeCut(s: string, max: number): number {
  if (s.length <= max) return s.length;
  let cut = max;
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  const amp = s.lastIndexOf('&', cut - 1);
  if (amp >= 0 && amp > cut - 6) {
    const semi = s.indexOf(';', amp);
    if (semi === -1 || semi >= cut) cut = amp;
  }
  return cut;
}

/** Cuts to at most `max` characters, ending in "…" when something was dropped. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, safeCut(s, max - 1))}…`;
}

function unixSeconds(t: Date | number): number {
  return Math.floor((typeof t === 'number' ? t : t.getTime()) / 1000);
}

function iso(t: Date | number): string {
  return new Date(typeof t === 'number' ? t : t.getTime()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Slack renders this in the reader's time zone; the ISO text is the fallback. */
function slackDate(t: Date | number): string {
  return `<!date^${unixSeconds(t)}^{date_short_pretty} {time_secs}|${iso(t)}>`;
}

const md = (text: string): TextObject => ({ type: 'mrkdwn', text });
const field = (label: string, value: string) => md(truncate(`*${label}*\n${value}`, SLACK_LIMITS.fieldText));
/** Agent-controlled values: invisible characters made visible, escaped, bounded, shown as code. */
const code = (s: string, max = 300) => `\`${truncate(escapeMrkdwn(visibleText(s)).replace(/`/g, "'"), max)}\``;
/** Agent-controlled values in the fallback text (notifications, no formatting shown): bounded, visible. */
const plain = (s: string, max: number) => visibleText(truncate(s, max));

export interface RenderedArguments {
  /** mrkdwn chunks, each already inside a code block, each ≤ 3000 characters. */
  chunks: string[];
  /** Characters of escaped JSON, before truncation. */
  totalChars: number;
  shownChars: number;
  redacted: number;
}

/** Pretty JSON of the redacted arguments, escaped, split into ≤ ARG_BLOCKS code sections. */
export function renderArguments(args: unknown, redact: readonly string[] = [], budget = ARG_BUDGET): RenderedArguments {
  const { value, redacted } = redactArguments(args, redact);
  let json: string;
  try {
    json = value === undefined ? '{}' : (JSON.stringify(value, null, 2) ?? 'null');
  } catch {
    json = '"[arguments could not be shown]"';
  }
  // Invisible characters become \uXXXX (inside JSON strings that is their own JSON escape); then a
  // zero-width space of ours between backticks keeps ``` in a string from closing the code block.
  const text = escapeMrkdwn(escapeInvisible(json, true)).replace(/```/g, '`\u200b`\u200b`');
  const shown = text.slice(0, safeCut(text, budget));
  const label = '*Arguments*\n';
  const open = '```\n';
  const close = '\n```';
  const chunks: string[] = [];
  let rest = shown;
  while (rest.length > 0 && chunks.length < ARG_BLOCKS) {
    const room = SLACK_LIMITS.sectionText - open.length - close.length - (chunks.length === 0 ? label.length : 0);
    let cut = safeCut(rest, room);
    if (cut < rest.length) {
      // Prefer to break after a whole line when one ends in the second half of the chunk.
      const nl = rest.lastIndexOf('\n', cut - 1);
      if (nl > room / 2) cut = nl + 1;
    }
    const piece = rest.slice(0, cut).replace(/\n$/, '') || ' ';
    chunks.push(`${chunks.length === 0 ? label : ''}${open}${piece}${close}`);
    rest = rest.slice(cut);
  }
  const shownChars = shown.length - rest.length;
  return { chunks, totalChars: text.length, shownChars, redacted };
}

const BINDING_NAME: Record<string, string> = { jsonrpc: 'JSON-RPC', rest: 'HTTP+JSON' };

/** "A2A 1.0 over JSON-RPC": how the call was read (closed sets; anything else is shown visible). */
const a2aVia = (t: A2aTargetView) => `A2A ${visibleText(truncate(t.version, 10))} over ${BINDING_NAME[t.binding] ?? visibleText(truncate(t.binding, 20))}`;

/**
 * What is asked, in one line: "create_issue" (MCP), or "A2A SendMessage to billing-agent, tenant
 * acme, skill refund (A2A 1.0 over JSON-RPC)" (A2A; "no skill" when the message names none; the
 * tenant, version and binding when known). Agent-controlled parts made visible.
 */
export function approvalSubject(input: Pick<ApprovalMessageInput, 'tool' | 'source' | 'method' | 'protocol' | 'a2a'>, max = 200): string {
  if (input.protocol !== 'a2a') return visibleText(truncate(input.tool, max));
  const skill = input.tool === '' ? 'no skill' : `skill ${visibleText(truncate(input.tool, max))}`;
  const t = input.a2a;
  const tenant = t?.tenant ? `, tenant ${visibleText(truncate(t.tenant, 100))}` : '';
  const via = t ? ` (${a2aVia(t)})` : '';
  return `A2A ${visibleText(truncate(input.method ?? 'SendMessage', 100))} to ${visibleText(truncate(input.source, 100))}${tenant}, ${skill}${via}`;
}

function reactionList(names: readonly string[]): string {
  return names.map((n) => `:${n.replace(/[^a-z0-9_+'-]/gi, '')}:`).join(' or ');
}

function approverList(approvers: ApprovalMessageInput['approvers']): string {
  const all = [...approvers.users.map((u) => `<@${u}>`), ...approvers.userGroups.map((g) => `<!subteam^${g}>`)].filter((m) => /^<[@!][A-Za-z0-9^]+>$/.test(m));
  if (all.length === 0) return 'nobody (no approvers configured)';
  const listed = all.slice(0, MAX_LISTED_APPROVERS).join(', ');
  return all.length > MAX_LISTED_APPROVERS ? `${listed} and ${all.length - MAX_LISTED_APPROVERS} more` : listed;
}

const USER_ID = /^[UW][A-Z0-9]+$/;

function mentions(by: readonly { id: string }[]): string {
  const ok = by.filter((b) => USER_ID.test(b.id));
  const listed = ok
    .slice(0, MAX_LISTED_APPROVERS)
    .map((b) => `<@${b.id}>`)
    .join(', ');
  return ok.length > MAX_LISTED_APPROVERS ? `${listed} and ${ok.length - MAX_LISTED_APPROVERS} more` : listed;
}

function requiredOf(input: ApprovalMessageInput): number {
  const n = input.approvers.required;
  return n !== undefined && Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * "1 of 2 approvals (<@U1>)": shown while a two-person rule waits for more, when the caller
 * tracks the count (showProgress); a message nobody updates would show a stale count.
 */
function progressLine(input: ApprovalMessageInput): string | undefined {
  const n = requiredOf(input);
  const by = input.approvedBy;
  if (n <= 1 || by === undefined) return undefined;
  return `*${by.length} of ${n} approvals*${by.length ? ` (${mentions(by)})` : ''}`;
}

const plainText = (text: string): TextObject => ({ type: 'plain_text', text, emoji: false });

function actionButtons(input: ApprovalMessageInput): Block {
  return {
    type: 'actions',
    block_id: ACTIONS_BLOCK_ID,
    elements: [
      {
        type: 'button',
        action_id: APPROVE_ACTION_ID,
        value: input.id,
        style: 'primary',
        text: plainText('Approve'),
        // Slack's own confirmation dialog: one stray click must not run a call.
        confirm: {
          title: plainText('Approve this call?'),
          text: plainText(
            truncate(
              input.protocol === 'a2a'
                ? `ThoughtGate will send this message to ${visibleText(input.source)}${input.a2a?.tenant ? ` (tenant ${visibleText(truncate(input.a2a.tenant, 100))})` : ''} once, exactly as shown.`
                : `ThoughtGate will run ${visibleText(input.tool)} once, with the arguments shown.`,
              300,
            ),
          ),
          confirm: plainText('Approve'),
          deny: plainText('Cancel'),
        },
      },
      { type: 'button', action_id: REJECT_ACTION_ID, value: input.id, style: 'danger', text: plainText('Reject') },
    ],
  };
}

function detailFields(input: ApprovalMessageInput): TextObject[] {
  const w = input.workload;
  const a2a = input.protocol === 'a2a';
  const fields = [
    a2a ? field('Skill', input.tool === '' ? '(none named)' : code(input.tool)) : field('Tool', code(input.tool)),
    field(a2a ? 'Agent' : 'Source', code(input.source)),
    ...(a2a && input.a2a?.tenant ? [field('Tenant', code(input.a2a.tenant))] : []),
    field('Workload', code(`${w.namespace}/${w.serviceAccount}`)),
    field('Pod', code(w.pod)),
    field('Expires', slackDate(input.expiresAt)),
    field('Request', code(input.id)),
  ];
  if (input.method && input.method !== 'tools/call')
    fields.push(field(a2a ? 'A2A method' : 'Method', `${code(input.method)}${a2a && input.a2a ? escapeMrkdwn(`\n${a2aVia(input.a2a)}`) : ''}`));
  if (input.rule) fields.push(field('Rule', code(input.rule)));
  return fields;
}

function blockTextLength(blocks: readonly Block[]): number {
  let n = 0;
  for (const b of blocks) {
    if (b.type === 'header') n += b.text.text.length;
    else if (b.type === 'section') n += (b.text?.text.length ?? 0) + (b.fields ?? []).reduce((m, f) => m + f.text.length, 0);
    else if (b.type === 'context') n += b.elements.reduce((m, e) => m + e.text.length, 0);
  }
  return n;
}

/** Argument sections (+ a note when truncated or redacted), sized to what the other blocks leave. */
function argumentBlocks(input: ApprovalMessageInput, otherBlocks: readonly Block[]): Block[] {
  // 300 characters of headroom for the note block, the label and the code fences.
  const budget = Math.max(500, Math.min(ARG_BUDGET, SLACK_LIMITS.totalBlockText - blockTextLength(otherBlocks) - 300));
  const r = renderArguments(input.arguments, input.redact ?? [], budget);
  const blocks: Block[] = r.chunks.map((text) => ({ type: 'section', text: md(text) }));
  const notes: string[] = [];
  if (r.shownChars < r.totalChars)
    notes.push(`Arguments truncated: ${r.shownChars.toLocaleString('en-US')} of ${r.totalChars.toLocaleString('en-US')} characters shown.`);
  if (r.redacted > 0) notes.push(`${r.redacted} value${r.redacted === 1 ? '' : 's'} hidden by the channel's redact list.`);
  if (notes.length) blocks.push({ type: 'context', elements: [md(notes.join(' '))] });
  return blocks;
}

function metadata(input: ApprovalMessageInput, status: string): SlackMessage['metadata'] {
  return {
    event_type: METADATA_EVENT_TYPE,
    event_payload: {
      request_id: input.id,
      tool: truncate(input.tool, 200),
      source: input.source,
      namespace: input.workload.namespace,
      status,
      ...(input.protocol === 'a2a' ? { protocol: 'a2a' } : {}),
    },
  };
}

/** The message posted when an approval starts. */
export function buildApprovalMessage(input: ApprovalMessageInput): SlackMessage {
  const approve = reactionList(input.reactions.approve);
  const reject = reactionList(input.reactions.reject);
  const head: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`Approval needed: ${approvalSubject(input)}`, SLACK_LIMITS.headerText), emoji: false } },
    { type: 'section', fields: detailFields(input) },
  ];
  const n = requiredOf(input);
  const quorum = n > 1 ? `${n} different approvers must approve; any one reject rejects. ` : '';
  const how = input.buttons
    ? `Decide with the buttons below (if they do not answer, react with ${approve} or ${reject}). Only clicks and reactions from ${approverList(input.approvers)} count. ${quorum}`
    : `React with ${approve} to approve or ${reject} to reject. Only reactions from ${approverList(input.approvers)} count; ` +
      (n > 1 ? quorum : 'if both appear, reject wins. ');
  const progress = progressLine(input);
  const instructions: Block = {
    type: 'context',
    elements: [
      md(truncate(`${how}Without a decision by ${slackDate(input.expiresAt)} the call is rejected.`, SLACK_LIMITS.sectionText)),
      ...(progress ? [md(truncate(progress, SLACK_LIMITS.sectionText))] : []),
    ],
  };
  const tail: Block[] = input.buttons ? [instructions, actionButtons(input)] : [instructions];
  const blocks = [...head, ...argumentBlocks(input, [...head, ...tail]), ...tail];
  const w = input.workload;
  const text = truncate(
    escapeMrkdwn(
      `Approval needed: ${input.protocol === 'a2a' ? approvalSubject(input) : `${plain(input.tool, 200)} (source ${plain(input.source, 100)})`} for ${plain(`${w.namespace}/${w.serviceAccount}`, 300)}, ` +
        `request ${plain(input.id, 300)}. ` +
        (input.buttons
          ? `Approve or reject in Slack before ${iso(input.expiresAt)}.`
          : `React ${reactionList(input.reactions.approve.slice(0, 1))} to approve or ${reactionList(input.reactions.reject.slice(0, 1))} to reject before ${iso(input.expiresAt)}.`),
    ),
    SLACK_LIMITS.fallbackText,
  );
  return { text, blocks, metadata: metadata(input, 'pending') };
}

const OUTCOME_TITLE: Record<FinalStatus, string> = {
  approved: '✅ Approved',
  rejected: '❌ Rejected',
  expired: '⌛ Expired',
  cancelled: '🚫 Cancelled',
  failed: '⚠️ Failed',
};

/** The final form of the message (chat.update): the same details, the outcome instead of the instructions. */
export function buildOutcomeMessage(input: ApprovalMessageInput, outcome: ApprovalOutcome): SlackMessage {
  const title = OUTCOME_TITLE[outcome.status];
  const by = (outcome.by ?? []).filter((b) => USER_ID.test(b.id));
  let line = `*${title}*`;
  if (by.length) line += ` by ${mentions(by)}`;
  const n = requiredOf(input);
  if (outcome.status === 'approved' && n > 1) line += ` (${by.length} of ${n} approvals)`;
  line += ` at ${slackDate(outcome.at)}`;
  if (outcome.status === 'expired') line += ' (no decision in time; the call was rejected)';
  // The reason may quote the upstream's or the agent's words: code, like every value they control.
  if (outcome.reason) line += `: ${code(outcome.reason, 500)}`;
  const head: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`${title}: ${approvalSubject(input)}`, SLACK_LIMITS.headerText), emoji: false } },
    { type: 'section', fields: detailFields(input) },
  ];
  const result: Block = { type: 'context', elements: [md(truncate(line, SLACK_LIMITS.sectionText))] };
  const blocks = [...head, ...argumentBlocks(input, [...head, result]), result];
  const names = by.map((b) => b.name ?? b.id).join(', ');
  const text = truncate(
    escapeMrkdwn(
      `${title.replace(/^\S+ /, '')}${names ? ` by ${plain(names, 500)}` : ''}: ${input.protocol === 'a2a' ? approvalSubject(input) : `${plain(input.tool, 200)} (source ${plain(input.source, 100)})`}, request ${plain(input.id, 300)}.` +
        (outcome.reason ? ` ${plain(outcome.reason, 500)}` : ''),
    ),
    SLACK_LIMITS.fallbackText,
  );
  return { text, blocks, metadata: metadata(input, outcome.status) };
}

/** Problems that would make Slack refuse or mangle the message; empty when it is fine. */
export function checkMessageLimits(msg: Pick<SlackMessage, 'text' | 'blocks'>): string[] {
  const problems: string[] = [];
  if (msg.text.length > SLACK_LIMITS.fallbackText) problems.push(`text has ${msg.text.length} characters`);
  if (msg.blocks.length > SLACK_LIMITS.blocks) problems.push(`${msg.blocks.length} blocks`);
  let total = 0;
  msg.blocks.forEach((b, i) => {
    if (b.block_id !== undefined && b.block_id.length > SLACK_LIMITS.blockId) problems.push(`block ${i}: block_id too long`);
    if (b.type === 'header') {
      if (b.text.text.length > SLACK_LIMITS.headerText) problems.push(`block ${i}: header text ${b.text.text.length}`);
      total += b.text.text.length;
    } else if (b.type === 'section') {
      if (b.text && b.text.text.length > SLACK_LIMITS.sectionText) problems.push(`block ${i}: section text ${b.text.text.length}`);
      if (b.fields && b.fields.length > SLACK_LIMITS.fields) problems.push(`block ${i}: ${b.fields.length} fields`);
      for (const f of b.fields ?? []) if (f.text.length > SLACK_LIMITS.fieldText) problems.push(`block ${i}: field text ${f.text.length}`);
      total += (b.text?.text.length ?? 0) + (b.fields ?? []).reduce((n, f) => n + f.text.length, 0);
    } else if (b.type === 'context') {
      if (b.elements.length > SLACK_LIMITS.contextElements) problems.push(`block ${i}: ${b.elements.length} context elements`);
      for (const e of b.elements) if (e.text.length > SLACK_LIMITS.sectionText) problems.push(`block ${i}: context text ${e.text.length}`);
      total += b.elements.reduce((n, e) => n + e.text.length, 0);
    }
  });
  if (total > SLACK_LIMITS.totalBlockText) problems.push(`${total} characters of block text`);
  return problems;
}
