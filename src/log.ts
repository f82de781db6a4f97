// One pino logger; components log through children ({ component: 'bpftool' } and so on).
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { app: 'dnsrace' }, timestamp: pino.stdTimeFunctions.isoTime });
}
