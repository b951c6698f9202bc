// A tiny A2A agent on the official JS SDK (@a2a-js/sdk 1.3.0, a devDependency of this repository),
// for examples/a2a/thoughtgate.yaml: skills `invoice`, `status` and `refund`, answered with one
// Message each; speaks A2A 1.0 and 0.3 (the SDK's compat layer), JSON-RPC at /a2a/jsonrpc and
// HTTP+JSON at /a2a/rest, its card at /.well-known/agent-card.json.
//
//   node examples/a2a/agent.mjs [port]      (default 9999; `make run DEMO=a2a` starts it for you)
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { AGENT_CARD_PATH, Role } from '@a2a-js/sdk';
import { duplicateInterfacesForLegacy } from '@a2a-js/sdk/compat/v0_3';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler } from '@a2a-js/sdk/server/express';

const port = Number(process.argv[2] ?? process.env.AGENT_PORT ?? 9999);
const base = `http://127.0.0.1:${port}`;

const skill = (id, description) => ({
  id,
  name: id,
  description,
  tags: [id],
  examples: [],
  inputModes: ['text/plain'],
  outputModes: ['text/plain'],
  securityRequirements: [],
});
const card = {
  name: 'Billing agent (example)',
  description: 'Invoices, payment status and refunds',
  supportedInterfaces: duplicateInterfacesForLegacy(
    [
      { url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
      { url: `${base}/a2a/rest`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: '1.0' },
    ],
    ['JSONRPC', 'HTTP+JSON'],
  ),
  version: '1.0.0',
  capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
  securitySchemes: {},
  securityRequirements: [],
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [
    skill('invoice', 'Creates an invoice'),
    skill('status', 'Says whether an invoice is paid'),
    skill('refund', 'Refunds a payment'),
    skill('export', 'Exports every invoice'),
  ],
  documentationUrl: '',
  signatures: [],
};

const textOf = (parts) => parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join(' ');

/** Answers every message with one Message naming the skill it was asked for. */
const executor = {
  cancelTask: async () => {},
  async execute(ctx, bus) {
    const m = ctx.userMessage;
    const skillName = typeof m.metadata?.skill === 'string' ? m.metadata.skill : '(none)';
    const reply = `${skillName}: done (${textOf(m.parts)})`;
    console.log(`[agent] ran skill ${skillName}: ${textOf(m.parts)}`);
    bus.publish(
      AgentEvent.message({
        role: Role.ROLE_AGENT,
        messageId: `m-${randomUUID()}`,
        parts: [{ content: { $case: 'text', value: reply }, mediaType: 'text/plain', filename: '', metadata: undefined }],
        taskId: '',
        contextId: ctx.contextId,
        extensions: [],
        metadata: {},
        referenceTaskIds: [],
      }),
    );
    bus.finished();
  },
};

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
const legacyCompat = { enabled: true };
const app = express();
app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler, legacyCompat }));
app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: async () => ({ isAuthenticated: false, userName: '' }), legacyCompat }));
app.use('/a2a/rest', restHandler({ requestHandler: handler, userBuilder: async () => ({ isAuthenticated: false, userName: '' }), legacyCompat }));
http.createServer(app).listen(port, '127.0.0.1', () => console.log(`[agent] A2A agent at ${base}/ (card: ${base}/${AGENT_CARD_PATH})`));
