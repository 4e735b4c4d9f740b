/**
 * The message bus: `createBus(url)` and its types. See bus.ts for the
 * contract, engine.ts for the topology, memory.ts and amqp.ts for transports.
 */
export { createBus, BusTimeout, BusUnavailable, RemoteError } from './bus.js';
export type { Bus, BusContext, BusOptions, Consumer, Handler, Notification, Priority, RemoteErrorDetails, Target } from './bus.js';
