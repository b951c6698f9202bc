// The approved call's request text: the client's id goes upstream exactly as the client wrote it.
import { callBody } from './upstream.js';

describe('callBody', () => {
  const call = { tool: 'add', arguments: { a: 1 } };
  test.each(['1.0', '12345678901234567890', '"x"', '-0', '1e2'])('id %s keeps its exact text', (raw) => {
    const body = callBody(raw, call, undefined, false);
    expect(body).toBe(`{"jsonrpc":"2.0","id":${raw},"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}`);
  });

  test("a held call asks for progress with ThoughtGate's token; a task call asks for a task", () => {
    expect(JSON.parse(callBody('7', call, 'tg-progress-1', true)).params).toEqual({
      name: 'add',
      arguments: { a: 1 },
      _meta: { progressToken: 'tg-progress-1' },
      task: {},
    });
  });
});
