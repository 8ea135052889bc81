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
  // Asynchronous writes to stdout: a synchronous write per log line showed up as the largest single
  // cost of the request path in profiles. pino flushes what is buffered when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
