import { ApiError } from '../core/errors.js';

/**
 * A Block Storage API error, written by core's `novaFault` as Cinder writes
 * its faults: `{"itemNotFound": {"code": 404, "message": "..."}}` (the key
 * follows the status; 413 is `overLimit`).
 */
export class VolumeError extends ApiError {
  constructor(status: number, message: string) {
    super(status, TITLES[status] ?? 'Error', message);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

export const badRequest = (message: string): VolumeError => new VolumeError(400, message);
export const forbidden = (message: string): VolumeError => new VolumeError(403, message);
export const notFound = (message: string): VolumeError => new VolumeError(404, message);
export const conflict = (message: string): VolumeError => new VolumeError(409, message);

/** Cinder's `VolumeNotFound`. */
export const volumeNotFound = (id: string): VolumeError => notFound(`Volume ${id} could not be found.`);
/** Cinder's `SnapshotNotFound`. */
export const snapshotNotFound = (id: string): VolumeError => notFound(`Snapshot ${id} could not be found.`);
/** Cinder's `VolumeTypeNotFound`. */
export const volumeTypeNotFound = (id: string): VolumeError => notFound(`Volume type ${id} could not be found.`);
/** Cinder's `InvalidVolume` (400). */
export const invalidVolume = (reason: string): VolumeError => badRequest(`Invalid volume: ${reason}`);
