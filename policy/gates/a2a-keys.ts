// The members each A2A object the gates read may have, per generation and binding: the fields the
// SDK servers' parsers know (JS 1.3.0's fromJSON, 0.3.14's types, Python's protos and models).
// Pure. A member outside them is refused (-32602): a server might read what the gates do not
// (a spelling, an alias such as 0.3 HTTP+JSON's `request` for `message`), and the gates must not
// decide on less than the agent runs. Each name's snake_case spelling is known too (member() in
// a2a-operation.ts reads both). Checked against what the real clients send:
// test/a2a-describe-peers.test.ts.

/** 1.0 (both bindings), 0.3 JSON-RPC, 0.3 HTTP+JSON. */
export type KeyDialect = '1.0' | '0.3 jsonrpc' | '0.3 rest';
export type KeyLevel = 'send' | 'message' | 'part' | 'file' | 'configuration' | 'push' | 'create' | 'createConfig';

const PUSH_10 = ['tenant', 'id', 'taskId', 'url', 'token', 'authentication'];
const PUSH_03 = ['id', 'url', 'token', 'authentication'];

const TABLE: Record<KeyDialect, Partial<Record<KeyLevel, readonly string[]>>> = {
  '1.0': {
    send: ['tenant', 'message', 'configuration', 'metadata'],
    message: ['messageId', 'contextId', 'taskId', 'role', 'parts', 'metadata', 'extensions', 'referenceTaskIds'],
    part: ['text', 'raw', 'url', 'data', 'metadata', 'filename', 'mediaType'],
    configuration: ['acceptedOutputModes', 'taskPushNotificationConfig', 'historyLength', 'returnImmediately'],
    push: PUSH_10,
    create: PUSH_10,
  },
  '0.3 jsonrpc': {
    send: ['message', 'configuration', 'metadata'],
    message: ['kind', 'messageId', 'contextId', 'taskId', 'role', 'parts', 'metadata', 'extensions', 'referenceTaskIds'],
    part: ['kind', 'text', 'file', 'data', 'metadata'],
    file: ['uri', 'bytes', 'mimeType', 'name'],
    configuration: ['acceptedOutputModes', 'pushNotificationConfig', 'historyLength', 'blocking'],
    push: PUSH_03,
    create: ['taskId', 'pushNotificationConfig', 'metadata'],
  },
  '0.3 rest': {
    send: ['message', 'request', 'configuration', 'metadata'],
    message: ['messageId', 'contextId', 'taskId', 'role', 'content', 'metadata', 'extensions', 'referenceTaskIds'],
    part: ['text', 'file', 'data', 'metadata'],
    file: ['fileWithUri', 'fileWithBytes', 'mimeType', 'name'],
    configuration: ['acceptedOutputModes', 'pushNotification', 'historyLength', 'blocking'],
    push: PUSH_03,
    // JS 1.3.0 compat {name, pushNotificationConfig}; JS 0.3.14 and Python {parent, configId, config: {name, pushNotificationConfig}}.
    create: ['name', 'parent', 'configId', 'config', 'pushNotificationConfig'],
    createConfig: ['name', 'pushNotificationConfig'],
  },
};

const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// A Map of Sets: a key named "__proto__" or "constructor" is not found by accident.
const KNOWN = new Map<string, ReadonlySet<string>>();
for (const [dialect, levels] of Object.entries(TABLE))
  for (const [level, keys] of Object.entries(levels)) KNOWN.set(`${dialect} ${level}`, new Set(keys.flatMap((k) => [k, snake(k)])));

/** The first member of `obj` this dialect's `level` does not know, or undefined (also for a level it has no list for). */
export function unknownKey(obj: Record<string, unknown>, dialect: KeyDialect, level: KeyLevel): string | undefined {
  const known = KNOWN.get(`${dialect} ${level}`);
  if (!known) return undefined;
  return Object.keys(obj).find((k) => !known.has(k));
}

/** The dialect of a call. */
export function keyDialect(version: '0.3' | '1.0', binding: 'jsonrpc' | 'rest'): KeyDialect {
  return version === '1.0' ? '1.0' : binding === 'rest' ? '0.3 rest' : '0.3 jsonrpc';
}
