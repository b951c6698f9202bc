import { buildReasonModal, MAX_REASON_CHARS, parseInteraction, REASON_ACTION_ID, REASON_BLOCK_ID, REASON_VIEW_CALLBACK_ID } from './interactions.js';
import { APPROVE_ACTION_ID, REJECT_ACTION_ID } from './message.js';

const click = (over: Record<string, unknown> = {}) => ({
  type: 'block_actions',
  user: { id: 'U1' },
  trigger_id: 'T.1',
  container: { type: 'message', channel_id: 'C1', message_ts: '1.000100' },
  actions: [{ action_id: APPROVE_ACTION_ID, value: 'req-1' }],
  ...over,
});

test('a click on our buttons', () => {
  expect(parseInteraction(click())).toEqual({
    kind: 'button',
    action: 'approve',
    approvalId: 'req-1',
    user: 'U1',
    channel: 'C1',
    ts: '1.000100',
    triggerId: 'T.1',
  });
  expect(parseInteraction(click({ actions: [{ action_id: 'other' }, { action_id: REJECT_ACTION_ID, value: 'req-1' }] }))).toMatchObject({ action: 'reject' });
  // container missing: channel and message are used.
  expect(parseInteraction(click({ container: undefined, channel: { id: 'C2' }, message: { ts: '2.0' } }))).toMatchObject({ channel: 'C2', ts: '2.0' });
});

test('anything else is not ours', () => {
  for (const p of [
    null,
    'x',
    click({ user: undefined }),
    click({ actions: [{ action_id: 'someone_elses', value: 'req-1' }] }),
    click({ actions: [{ action_id: APPROVE_ACTION_ID }] }),
    click({ container: {}, channel: undefined }),
    { type: 'shortcut', user: { id: 'U1' } },
    { type: 'view_submission', user: { id: 'U1' }, view: { callback_id: 'other' } },
    { type: 'view_submission', user: { id: 'U1' }, view: { callback_id: REASON_VIEW_CALLBACK_ID, private_metadata: 'not json' } },
    { type: 'view_submission', user: { id: 'U1' }, view: { callback_id: REASON_VIEW_CALLBACK_ID, private_metadata: '{"id":"x"}' } },
  ])
    expect(parseInteraction(p)).toBeUndefined();
});

test('the reason modal round-trips its approval and a trimmed, bounded reason', () => {
  const modal = buildReasonModal({ approvalId: 'req-1', channel: 'C1', ts: '1.0', tool: 'drop\u202Etable' });
  expect(JSON.stringify(modal)).toContain('drop\\\\u202Etable');
  const submit = (value: unknown) => ({
    type: 'view_submission',
    user: { id: 'U2' },
    view: { ...modal, state: { values: { [REASON_BLOCK_ID]: { [REASON_ACTION_ID]: { type: 'plain_text_input', value } } } } },
  });
  expect(parseInteraction(submit('  because  '))).toEqual({
    kind: 'reason',
    action: 'reject',
    approvalId: 'req-1',
    user: 'U2',
    channel: 'C1',
    ts: '1.0',
    reason: 'because',
  });
  expect(parseInteraction(submit(null))).not.toHaveProperty('reason');
  expect(parseInteraction(submit('   '))).not.toHaveProperty('reason');
  expect((parseInteraction(submit('x'.repeat(5000))) as { reason: string }).reason).toHaveLength(MAX_REASON_CHARS);
});
