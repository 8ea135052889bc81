import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/** The process logger. Secrets and message contents are redacted wherever they might appear. */
export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        'req.headers["stripe-signature"]',
        "*.apiKey",
        "*.api_key",
        "*.password",
        "*.messages",
        "*.content",
      ],
      censor: "[redacted]",
    },
  };
  // Asynchronous, buffered writes to stdout: a write per log line was the largest single cost of the
  // request path in profiles (a system call each, and they are slow on small VMs). Lines go out when
  // 4 KB are buffered or every 100 ms, and pino flushes what is left when the process exits; a
  // process killed with SIGKILL loses at most the last 100 ms of its log.
  return pino(
    options,
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 }),
  );
}
