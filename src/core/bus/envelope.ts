/**
 * Wire format of the bus, as oslo.messaging's (message format 2.0): every body
 * is `{"oslo.version": "2.0", "oslo.message": "<JSON of the message>"}`. RPC
 * requests carry `method`, `args`, `_context_<key>` fields, `_unique_id`, and
 * for calls `_msg_id`, `_reply_q` and `_timeout`; replies carry `result`,
 * `failure` (a JSON string: class, module, message, tb, args, kwargs), `ending`
 * and `_msg_id`. Encoding is strict JSON: a function, symbol or BigInt
 * anywhere makes it throw a TypeError instead of being silently dropped.
 */
import { randomUUID } from 'node:crypto';
import { RemoteError, type BusContext, type Notification, type Priority, type RemoteErrorDetails } from './bus.js';

const VERSION = '2.0';
const CONTEXT_PREFIX = '_context_';

/** A random id as oslo makes them (`uuid4().hex`: 32 hex digits). */
export function hexId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * JSON.stringify that refuses what JSON cannot carry faithfully: functions,
 * symbols and BigInts (anywhere, even as object properties, which plain
 * JSON.stringify would drop) and cycles. Throws a TypeError naming `what`.
 */
export function strictJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, function (key, v: unknown) {
      const kind = typeof v;
      if (kind === 'function' || kind === 'symbol' || kind === 'bigint') {
        throw new TypeError(`a ${kind}${key ? ` (at key ${JSON.stringify(key)})` : ''} is not JSON`);
      }
      return v;
    });
  } catch (err) {
    throw new TypeError(`${what} cannot be sent on the message bus: ${err instanceof Error ? err.message : String(err)}`);
  }
  return text ?? 'null';
}

function wrap(message: Record<string, unknown>, what: string): string {
  return JSON.stringify({ 'oslo.version': VERSION, 'oslo.message': strictJson(message, what) });
}

function unwrap(body: string): Record<string, unknown> {
  const outer: unknown = JSON.parse(body);
  if (!isRecord(outer)) throw new TypeError('message body is not a JSON object');
  const inner = outer['oslo.message'];
  if (typeof inner !== 'string') return outer; // oslo format 1.0: the message itself
  const message: unknown = JSON.parse(inner);
  if (!isRecord(message)) throw new TypeError('oslo.message is not a JSON object');
  return message;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An RPC request as decoded by a server. */
export interface Request {
  method: string;
  args: unknown;
  context: BusContext;
  /** Set on calls: where and under which id to reply. */
  msgId?: string;
  replyQueue?: string;
  /** The caller's timeout, when it gave one. */
  timeoutMs?: number;
}

/** Encodes an RPC request; throws a TypeError when args or context are not JSON. */
export function encodeRequest(request: Request): string {
  const message: Record<string, unknown> = { method: request.method, args: request.args, _unique_id: hexId() };
  for (const [key, value] of Object.entries(request.context)) message[CONTEXT_PREFIX + key] = value;
  if (request.msgId !== undefined) message._msg_id = request.msgId;
  if (request.replyQueue !== undefined) message._reply_q = request.replyQueue;
  if (request.timeoutMs !== undefined) message._timeout = request.timeoutMs / 1000;
  return wrap(message, `the arguments or context of RPC method ${JSON.stringify(request.method)}`);
}

/** Decodes an RPC request; throws on a malformed body. */
export function decodeRequest(body: string): Request {
  const message = unwrap(body);
  if (typeof message.method !== 'string') throw new TypeError('RPC message has no method');
  const context: BusContext = {};
  for (const [key, value] of Object.entries(message)) {
    if (key.startsWith(CONTEXT_PREFIX)) context[key.slice(CONTEXT_PREFIX.length)] = value;
  }
  const request: Request = { method: message.method, args: message.args, context };
  if (typeof message._msg_id === 'string') request.msgId = message._msg_id;
  if (typeof message._reply_q === 'string') request.replyQueue = message._reply_q;
  if (typeof message._timeout === 'number') request.timeoutMs = message._timeout * 1000;
  return request;
}

/** A decoded reply: the result, or the remote failure. */
export type Reply = { msgId: string; ok: true; result: unknown } | { msgId: string; ok: false; error: RemoteError };

/**
 * Encodes the reply to call `msgId`. When the result is not JSON, encodes a
 * TypeError failure instead, so that the caller gets a RemoteError rather
 * than a timeout.
 */
export function encodeResult(msgId: string, method: string, result: unknown): string {
  try {
    return wrap({ result, failure: null, ending: true, _msg_id: msgId }, `the result of RPC method ${JSON.stringify(method)}`);
  } catch (err) {
    return encodeFailure(msgId, err);
  }
}

/** Encodes a failure reply for call `msgId` from whatever the handler threw. */
export function encodeFailure(msgId: string, thrown: unknown): string {
  const failure = describeFailure(thrown);
  return wrap({ result: null, failure: JSON.stringify(failure), ending: true, _msg_id: msgId }, 'a failure');
}

interface Failure {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: string[];
  kwargs: { status?: number; title?: string; headers?: Record<string, string> };
}

function describeFailure(thrown: unknown): Failure {
  const err = thrown instanceof Error ? thrown : undefined;
  const message = err ? err.message : String(thrown);
  const source = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as { status?: unknown; title?: unknown; headers?: unknown };
  const kwargs: Failure['kwargs'] = {};
  if (typeof source.status === 'number' && Number.isFinite(source.status)) {
    kwargs.status = source.status;
    if (typeof source.title === 'string') kwargs.title = source.title;
    const headers = stringRecord(source.headers);
    if (headers) kwargs.headers = headers;
  }
  let cls = 'Error';
  if (err) cls = err.name && err.name !== 'Error' ? err.name : err.constructor.name || 'Error';
  return { class: cls, module: 'stratus', message, tb: err?.stack ? err.stack.split('\n') : [], args: [message], kwargs };
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** Decodes a reply; throws on a malformed body. */
export function decodeReply(body: string): Reply {
  const message = unwrap(body);
  const msgId = message._msg_id;
  if (typeof msgId !== 'string') throw new TypeError('reply has no _msg_id');
  if (message.failure === null || message.failure === undefined) return { msgId, ok: true, result: message.result };
  let failure: unknown = message.failure;
  if (typeof failure === 'string') {
    try {
      failure = JSON.parse(failure);
    } catch {
      failure = { message: failure };
    }
  }
  const f = isRecord(failure) ? failure : {};
  const kwargs = isRecord(f.kwargs) ? f.kwargs : {};
  const details: RemoteErrorDetails = {};
  if (typeof kwargs.status === 'number') details.status = kwargs.status;
  if (typeof kwargs.title === 'string') details.title = kwargs.title;
  const headers = stringRecord(kwargs.headers);
  if (headers) details.headers = headers;
  if (Array.isArray(f.tb)) details.remoteStack = f.tb.map(String).join('\n');
  const cls = typeof f.class === 'string' ? f.class : 'Error';
  const text = typeof f.message === 'string' ? f.message : 'remote error';
  return { msgId, ok: false, error: new RemoteError(cls, text, details) };
}

/** The OpenStack timestamp of `date`: UTC `YYYY-MM-DD HH:MM:SS.ffffff`. */
export function openstackTimestamp(date: Date = new Date()): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

/** Builds and encodes a notification; throws a TypeError when the payload is not JSON. */
export function encodeNotification(publisherId: string, eventType: string, payload: unknown, priority: Priority): { body: string; notification: Notification } {
  const notification: Notification = {
    message_id: randomUUID(),
    publisher_id: publisherId,
    event_type: eventType,
    priority,
    payload,
    timestamp: openstackTimestamp(),
  };
  return { body: wrap({ ...notification }, `the payload of notification ${JSON.stringify(eventType)}`), notification };
}

/** Decodes a notification; throws on a malformed body. */
export function decodeNotification(body: string): Notification {
  const m = unwrap(body);
  if (typeof m.event_type !== 'string' || typeof m.publisher_id !== 'string' || typeof m.priority !== 'string') {
    throw new TypeError('notification lacks event_type, publisher_id or priority');
  }
  return {
    message_id: typeof m.message_id === 'string' ? m.message_id : '',
    publisher_id: m.publisher_id,
    event_type: m.event_type,
    priority: m.priority.toUpperCase() as Priority,
    payload: m.payload,
    timestamp: typeof m.timestamp === 'string' ? m.timestamp : '',
  };
}
