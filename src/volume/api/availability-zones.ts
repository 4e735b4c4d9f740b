import type { FastifyInstance } from 'fastify';
import type { VolumeService } from '../volume.js';
import { availabilityZones } from '../volume-services.js';

/** `GET /os-availability-zone`: the zones of the volume services (any user). */
export function registerAvailabilityZones(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/os-availability-zone', async () => ({
    availabilityZoneInfo: (await availabilityZones(volume)).map((az) => ({ zoneName: az.name, zoneState: { available: az.available } })),
  }));
}
