import { attachVolume, beginDetaching, detachVolume, initializeConnection, reserveVolume, rollDetaching, terminateConnection, unreserveVolume } from '../legacy-attach.js';
import type { Connector } from '../rpc.js';
import { volumeTarget } from '../volumes.js';
import { authorize } from '../volume.js';
import { ACCEPTED, argsObject, type ActionHandler } from './volume-action-types.js';
import { enumField, invalidField, isObject, notOfType, pyRepr, stringField, uuidField } from './volume-input.js';

/**
 * The legacy attach actions of `POST /volumes/{id}/action`: `os-reserve`,
 * `os-unreserve`, `os-attach`, `os-detach`, `os-begin_detaching`,
 * `os-roll_detaching`, `os-initialize_connection`,
 * `os-terminate_connection`, and the administrators' `os-force_detach`.
 */

/** A connector member: an object; a string is taken as a host name; null where allowed. */
function connectorArg(value: unknown, allowNull: boolean): Connector | null {
  if (value === null && allowNull) return null;
  if (typeof value === 'string') return { host: value };
  if (!isObject(value)) throw invalidField('connector', value, notOfType(value, allowNull ? ['string', 'object', 'null'] : ['object', 'string']));
  return value as Connector;
}

export const attachActions: Record<string, ActionHandler> = {
  async 'os-reserve'(volume, action) {
    await reserveVolume(volume, action.ctx, await action.load());
    return ACCEPTED;
  },

  async 'os-unreserve'(volume, action) {
    await unreserveVolume(volume, action.ctx, await action.load());
    return ACCEPTED;
  },

  async 'os-begin_detaching'(volume, action) {
    await beginDetaching(volume, action.ctx, await action.load());
    return ACCEPTED;
  },

  async 'os-roll_detaching'(volume, action) {
    await rollDetaching(volume, action.ctx, await action.load());
    return ACCEPTED;
  },

  async 'os-attach'(volume, action) {
    const args = argsObject(action, 'os-attach', ['instance_uuid', 'mountpoint', 'host_name', 'mode'], ['mountpoint']);
    const instanceUuid = args.instance_uuid === undefined ? null : uuidField('instance_uuid', args.instance_uuid);
    const hostName = args.host_name === undefined ? null : stringField('host_name', args.host_name, { max: 255 });
    if (instanceUuid === null && hostName === null) throw invalidField('os-attach', args, `${pyRepr(args, true)} is not valid under any of the given schemas`);
    const mountpoint = stringField('mountpoint', args.mountpoint, { min: 1, max: 255 }) ?? '';
    const mode = args.mode === undefined ? 'rw' : (enumField('mode', args.mode, ['rw', 'ro'] as const) ?? 'rw');
    await attachVolume(volume, action.ctx, await action.load(), { instanceUuid, hostName, mountpoint, mode });
    return ACCEPTED;
  },

  async 'os-detach'(volume, action) {
    const args = argsObject(action, 'os-detach', ['attachment_id'], [], true);
    const attachmentId = args.attachment_id === undefined || args.attachment_id === null ? null : uuidField('attachment_id', args.attachment_id);
    await detachVolume(volume, action.ctx, await action.load(), attachmentId);
    return ACCEPTED;
  },

  async 'os-initialize_connection'(volume, action) {
    const args = argsObject(action, 'os-initialize_connection', ['connector'], ['connector']);
    const connector = connectorArg(args.connector, false) ?? { host: '' };
    const info = await initializeConnection(volume, action.ctx, await action.load(), connector);
    return { status: 200, body: { connection_info: info } };
  },

  async 'os-terminate_connection'(volume, action) {
    const args = argsObject(action, 'os-terminate_connection', ['connector'], ['connector']);
    const connector = connectorArg(args.connector, true);
    await terminateConnection(volume, action.ctx, await action.load(), connector);
    return ACCEPTED;
  },

  async 'os-force_detach'(volume, action) {
    const args = argsObject(action, 'os-force_detach', ['connector', 'attachment_id']);
    const connector = args.connector === undefined ? null : connectorArg(args.connector, true);
    const attachmentId = args.attachment_id === undefined || args.attachment_id === null ? null : stringField('attachment_id', args.attachment_id, { nullable: true });
    const row = await action.load();
    authorize(volume, action.ctx, 'volume_extension:volume_admin_actions:force_detach', volumeTarget(row));
    await terminateConnection(volume, action.ctx, row, connector);
    await detachVolume(volume, action.ctx, (await action.load()) ?? row, attachmentId, 'force detaching');
    return ACCEPTED;
  },
};
