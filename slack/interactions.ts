// Slack interaction payloads (from Socket Mode `interactive` envelopes) → what a person did to an
// approval, and the modal that asks a rejecter for a reason. Pure.
//
// What is read, and what is not trusted:
//   - block_actions: the first action whose action_id is one of our buttons; its `value` is the
//     approval id, which the receiver looks up, then checks that the click came from that
//     approval's own message (channel and ts from `container`); the value alone decides nothing.
//   - view_submission of our reason modal (callback_id): the approval id, channel and ts come
//     back in private_metadata, which we wrote when opening it; checked the same way.
//   - the user is payload.user.id (Slack's record of who clicked), checked against the allowlist.
// Anything else (other apps' buttons, other modals, malformed payloads) maps to undefined.
import { APPROVE_ACTION_ID, REJECT_ACTION_ID, truncate } from './message.js';
import { visibleText } from './visible.js';

export type VoteAction = 'approve' | 'reject';

/** A click on Approve or Reject in an approval message. */
export interface ButtonInteraction {
  kind: 'button';
  action: VoteAction;
  approvalId: string;
  user: string;
  channel: string;
  ts: string;
  /** For views.open; Slack honours it for 3 s. */
  triggerId?: string;
  /** Where to answer the clicker without a bot token (an ephemeral; 5 uses in 30 min). */
  responseUrl?: string;
}

/** A submitted reason modal: a reject with an optional reason. */
export interface ReasonInteraction {
  kind: 'reason';
  action: 'reject';
  approvalId: string;
  user: string;
  channel: string;
  ts: string;
  reason?: string;
}

export type Interaction = ButtonInteraction | ReasonInteraction;

export const REASON_VIEW_CALLBACK_ID = 'thoughtgate_reject_reason';
export const REASON_BLOCK_ID = 'reason';
export const REASON_ACTION_ID = 'reason_text';
/** Longest reason kept (Slack's input allows up to 3000; the outcome line shows 500). */
export const MAX_REASON_CHARS = 500;

const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The approval action in a Socket Mode `interactive` payload, or undefined when it is not ours. */
export function parseInteraction(payload: unknown): Interaction | undefined {
  const p = obj(payload);
  const user = text(obj(p?.user)?.id);
  if (!p || !user) return undefined;
  if (p.type === 'block_actions') {
    const actions = Array.isArray(p.actions) ? p.actions : [];
    const a = actions.map(obj).find((x) => x?.action_id === APPROVE_ACTION_ID || x?.action_id === REJECT_ACTION_ID);
    const approvalId = text(a?.value);
    const container = obj(p.container);
    const channel = text(container?.channel_id) ?? text(obj(p.channel)?.id);
    const ts = text(container?.message_ts) ?? text(obj(p.message)?.ts);
    if (!a || !approvalId || !channel || !ts) return undefined;
    const triggerId = text(p.trigger_id);
    const responseUrl = text(p.response_url);
    return {
      kind: 'button',
      action: a.action_id === APPROVE_ACTION_ID ? 'approve' : 'reject',
      approvalId,
      user,
      channel,
      ts,
      ...(triggerId ? { triggerId } : {}),
      ...(responseUrl ? { responseUrl } : {}),
    };
  }
  if (p.type === 'view_submission') {
    const view = obj(p.view);
    if (view?.callback_id !== REASON_VIEW_CALLBACK_ID) return undefined;
    let meta: Record<string, unknown> | undefined;
    try {
      meta = obj(JSON.parse(String(view.private_metadata)));
    } catch {
      return undefined;
    }
    const approvalId = text(meta?.id);
    const channel = text(meta?.channel);
    const ts = text(meta?.ts);
    if (!approvalId || !channel || !ts) return undefined;
    const raw = obj(obj(obj(obj(view.state)?.values)?.[REASON_BLOCK_ID])?.[REASON_ACTION_ID])?.value;
    const reason = typeof raw === 'string' ? raw.trim().slice(0, MAX_REASON_CHARS) : '';
    return { kind: 'reason', action: 'reject', approvalId, user, channel, ts, ...(reason ? { reason } : {}) };
  }
  return undefined;
}

/** The modal a Reject click opens (views.open): an optional reason, submitted as the reject. */
export function buildReasonModal(input: { approvalId: string; channel: string; ts: string; tool: string }): Record<string, unknown> {
  const plain = (t: string) => ({ type: 'plain_text', text: t, emoji: false });
  return {
    type: 'modal',
    callback_id: REASON_VIEW_CALLBACK_ID,
    private_metadata: JSON.stringify({ id: input.approvalId, channel: input.channel, ts: input.ts }),
    title: plain('Reject this call'),
    submit: plain('Reject'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'section',
        text: plain(truncate(`Reject ${visibleText(input.tool)} (request ${visibleText(input.approvalId)})? Any reject rejects the call.`, 2000)),
      },
      {
        type: 'input',
        block_id: REASON_BLOCK_ID,
        optional: true,
        label: plain('Reason (optional, shown in the approval message)'),
        element: { type: 'plain_text_input', action_id: REASON_ACTION_ID, multiline: true, max_length: MAX_REASON_CHARS },
      },
    ],
  };
}
