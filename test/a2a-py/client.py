"""The official Python A2A client (a2a-sdk, pinned by scripts/a2a-python-requirements.txt) as a CLI
for the tests: one operation against an agent's base URL, one JSON object per stdout line.

    client.py <base-url> <op> [--binding JSONRPC|HTTP+JSON] [--text T] [--metadata JSON]
              [--task-id ID] [--header 'Name: value']... [--push-url U] [--push-id I]
              [--push-token T] [--timeout S] [--extended]

ops: card (the public card; with --extended a second line: the SDK's extended card), send (non-streaming client:
SendMessage / message/send), stream (streaming client: SendStreamingMessage / message/stream; one
line per event with receivedAt, ms since the epoch), get, cancel, resubscribe (events as stream),
push-set. An error is printed as {"error": {"code", "message", "type"}} and the exit code is 1.
The HTTP timeout is the SDK's (httpx's 5 s) unless --timeout is given: tests of held calls rely on it.
"""

import argparse
import asyncio
import json
import re
import sys
import time
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.types import (
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct


def out(obj):
    print(json.dumps(obj), flush=True)


def state_name(state):
    name = TaskState.Name(state).removeprefix('TASK_STATE_').lower().replace('_', '-')
    return 'unknown' if name == 'unspecified' else name


def texts(parts):
    return ''.join(p.text for p in parts if p.WhichOneof('content') == 'text')


def task_view(t):
    return {
        'id': t.id,
        'contextId': t.context_id,
        'state': state_name(t.status.state),
        'artifactText': ''.join(texts(a.parts) for a in t.artifacts),
    }


def event_view(ev):
    """A StreamResponse as the TS helpers' A2aEvent (kind, ids, state/text, receivedAt)."""
    at = int(time.time() * 1000)
    kind = ev.WhichOneof('payload')
    if kind == 'task':
        return {'kind': 'task', 'taskId': ev.task.id, 'contextId': ev.task.context_id,
                'state': state_name(ev.task.status.state), 'receivedAt': at}
    if kind == 'message':
        return {'kind': 'message', 'text': texts(ev.message.parts), 'receivedAt': at}
    if kind == 'status_update':
        s = state_name(ev.status_update.status.state)
        return {'kind': 'status', 'taskId': ev.status_update.task_id, 'state': s,
                'final': s in ('completed', 'failed', 'canceled', 'rejected'), 'receivedAt': at}
    if kind == 'artifact_update':
        a = ev.artifact_update
        return {'kind': 'artifact', 'taskId': a.task_id, 'text': texts(a.artifact.parts),
                'lastChunk': a.last_chunk, 'receivedAt': at}
    return {'kind': str(kind), 'receivedAt': at}


def card_view(card):
    return {'name': card.name, 'skills': [s.id for s in card.skills],
            'interfaces': [MessageToDict(i) for i in card.supported_interfaces]}


def error_view(e):
    message = getattr(e, 'message', None) or str(e)
    code = JSON_RPC_ERROR_CODE_MAP.get(type(e))
    m = re.match(r'JSON-RPC Error (-?\d+): (.*)', message, re.S)
    if code is None and m:
        code, message = int(m.group(1)), m.group(2)
    return {'error': {'code': code, 'message': message, 'type': type(e).__name__}}


def request(args):
    meta = Struct()
    meta.update(json.loads(args.metadata))
    msg = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=args.text)],
                  metadata=meta, task_id=args.task_id or '')
    config = None
    if args.push_url:
        config = SendMessageConfiguration(task_push_notification_config=TaskPushNotificationConfig(
            id=args.push_id or '', url=args.push_url, token=args.push_token or ''))
    return SendMessageRequest(message=msg, configuration=config)


async def run(args):
    headers = dict(h.split(':', 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    timeout = httpx.Timeout(args.timeout) if args.timeout else httpx.Timeout(5.0)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        config = ClientConfig(streaming=args.op in ('stream', 'resubscribe'), httpx_client=http,
                              supported_protocol_bindings=[args.binding])
        card = await A2ACardResolver(http, args.base_url).get_agent_card()
        client = ClientFactory(config).create(card)
        try:
            if args.op == 'card':
                out(card_view(card))
                if args.extended:
                    ctx = ClientCallContext(service_parameters=headers)
                    out(card_view(await client.get_extended_agent_card(GetExtendedAgentCardRequest(), context=ctx)))
            elif args.op in ('send', 'stream'):
                async for ev in client.send_message(request(args)):
                    if args.op == 'stream':
                        out(event_view(ev))
                    elif ev.WhichOneof('payload') == 'message':
                        out({'kind': 'message', 'text': texts(ev.message.parts)})
                    elif ev.WhichOneof('payload') == 'task':
                        out({'kind': 'task', 'task': task_view(ev.task)})
                    else:
                        out(event_view(ev))
            elif args.op == 'get':
                out({'task': task_view(await client.get_task(GetTaskRequest(id=args.task_id)))})
            elif args.op == 'cancel':
                out({'task': task_view(await client.cancel_task(CancelTaskRequest(id=args.task_id)))})
            elif args.op == 'resubscribe':
                async for ev in client.subscribe(SubscribeToTaskRequest(id=args.task_id)):
                    out(event_view(ev))
            elif args.op == 'push-set':
                cfg = await client.create_task_push_notification_config(TaskPushNotificationConfig(
                    task_id=args.task_id, id=args.push_id or '', url=args.push_url, token=args.push_token or ''))
                out({'pushConfig': {'taskId': cfg.task_id, 'id': cfg.id, 'url': cfg.url, 'token': cfg.token}})
            return 0
        except (A2AError, httpx.HTTPError) as e:
            out(error_view(e))
            return 1
        finally:
            await client.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('base_url')
    p.add_argument('op', choices=['card', 'send', 'stream', 'get', 'cancel', 'resubscribe', 'push-set'])
    p.add_argument('--binding', default='JSONRPC', choices=['JSONRPC', 'HTTP+JSON'])
    p.add_argument('--text', default='hello')
    p.add_argument('--metadata', default='{}')
    p.add_argument('--task-id', default='')
    p.add_argument('--header', action='append', default=[])
    p.add_argument('--push-url', default='')
    p.add_argument('--push-id', default='')
    p.add_argument('--push-token', default='')
    p.add_argument('--timeout', type=float, default=0)
    p.add_argument('--extended', action='store_true')
    args = p.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except A2AError as e:  # the card fetch or client creation failed
        out(error_view(e))
        sys.exit(1)


if __name__ == '__main__':
    main()
