import http from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's Prometheus registry. Every metric carries the `role` label of
 * the role that recorded it, so that an all-in-one process and a split
 * deployment expose the same series.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'stratus_process_' });

const seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const httpRequests = new Counter({
  name: 'stratus_http_requests_total',
  help: 'API requests answered, by role, method, route and status code',
  labelNames: ['role', 'method', 'route', 'status'] as const,
  registers: [registry],
});

export const httpErrors = new Counter({
  name: 'stratus_http_errors_total',
  help: 'API requests answered with a 5xx status, by role and route',
  labelNames: ['role', 'route'] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: 'stratus_http_request_duration_seconds',
  help: 'Time to answer an API request, by role, method and route',
  labelNames: ['role', 'method', 'route'] as const,
  buckets: seconds,
  registers: [registry],
});

export const dbDuration = new Histogram({
  name: 'stratus_db_query_duration_seconds',
  help: 'Database query time, by role and dialect',
  labelNames: ['role', 'dialect'] as const,
  buckets: seconds,
  registers: [registry],
});

export const busDuration = new Histogram({
  name: 'stratus_bus_duration_seconds',
  help: 'Message bus time: round trip of calls, publish time of casts, fanouts and notifications',
  labelNames: ['kind', 'topic', 'method'] as const,
  buckets: seconds,
  registers: [registry],
});

export const busErrors = new Counter({
  name: 'stratus_bus_errors_total',
  help: 'Message bus failures (timeouts, remote errors, transport errors), by kind and topic',
  labelNames: ['kind', 'topic', 'reason'] as const,
  registers: [registry],
});

/**
 * Serves `GET /metrics` on its own port (default loopback only), apart from
 * the public APIs, so that scraping needs no token and leaks nothing to users.
 */
export async function serveMetrics(host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
