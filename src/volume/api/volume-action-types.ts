import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import type { VolumeRow } from '../db/schema.js';
import type { VolumeService } from '../volume.js';
import { checkMembers, invalidField, isObject, notOfType } from './volume-input.js';

/** What a volume action handler (`POST /volumes/{id}/action`) gets. */
export interface Action {
  req: FastifyRequest;
  ctx: RequestContext;
  volumeId: string;
  /** The value of the action's key (`{"os-extend": {...}}` → `{...}`). */
  args: unknown;
  /** Loads the volume (404 when the caller may not see it). */
  load(): Promise<VolumeRow>;
}

/** What a handler answers: a status and an optional body. */
export interface ActionResult {
  status: number;
  body?: unknown;
}

export type ActionHandler = (volume: VolumeService, action: Action) => Promise<ActionResult>;

/** The usual answer of an action: 202 without a body. */
export const ACCEPTED: ActionResult = { status: 202 };

/** The action's member as an object with `allowed` keys (`required` among them); `{}` for null when `nullable`. */
export function argsObject(action: Action, name: string, allowed: string[], required: string[] = [], nullable = false): Record<string, unknown> {
  if (action.args === null && nullable) return {};
  if (!isObject(action.args)) throw invalidField(name, action.args, notOfType(action.args, nullable ? ['object', 'null'] : 'object'));
  checkMembers(action.args, name, allowed, required);
  return action.args;
}
