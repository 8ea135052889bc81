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
  return destination ? pino(options, destination) : pino(options);
}
