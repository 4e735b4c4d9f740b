import { pino, type Logger } from 'pino';

export type { Logger };

let root: Logger = pino({ level: 'info', base: { service: 'stratus' } });

/**
 * Sets up the process's root logger: JSON lines on stdout (or a file), one
 * field per fact, so that request ids, roles and resources can be searched.
 */
export function configureLogging(options: { level: string; file?: string }): Logger {
  const destination = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination({ fd: 1, sync: false });
  root = pino({ level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return root;
}

/** A child logger for one role (`identity`, `compute-api`, ...). */
export function roleLogger(role: string): Logger {
  return root.child({ role });
}

export function rootLogger(): Logger {
  return root;
}
