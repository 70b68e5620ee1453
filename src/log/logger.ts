import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * The root logger. Prompts, completions and credentials never reach it: the audit owns bodies, and
 * request logs carry ids only. The redaction paths are a second line of defence for headers.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "spark-gateway" },
      redact: {
        paths: ["headers.authorization", 'headers["x-api-key"]', "headers.cookie", "upstreamKey", "token", "key"],
        censor: "[redacted]",
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
