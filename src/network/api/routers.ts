import type { FastifyInstance } from 'fastify';
import type { NetworkService } from '../network.js';

// Being written now; registers nothing yet.
export function registerRouters(_app: FastifyInstance, _net: NetworkService): void {}
