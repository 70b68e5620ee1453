import pino, { type DestinationStream, type Logger } from "pino";
import { withoutCommand } from "./throttle.js";

export type { Logger };

/**
 * The root logger. Prompts, completions and credentials never reach it: the audit owns bodies, and
 * request logs carry ids only. The redaction paths are a second line of defence for headers.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  if (destination === undefined) return toStdout(level);
  return pino(
    {
      level,
      base: { service: "spark-gateway" },
      redact: {
        paths: ["headers.authorization", 'headers["x-api-key"]', "headers.cookie", "upstreamKey", "token", "key"],
        censor: "[redacted]",
      },
      serializers: { err: (error: Error) => pino.stdSerializers.err(withoutCommand(error) as Error) },
    },
    destination,
  );
}

/**
 * Logs written to stdout as they come (the gateway logs little at `info`: no line per request). A
 * buffered stdout flushed at exit never exited once its reader was gone (a log shipper that died):
 * the flush retried EPIPE for ever. A log whose reader is gone is dropped from then on instead; it
 * neither stops the gateway nor keeps it from exiting.
 */
function toStdout(level: string): Logger {
  const stdout = pino.destination({ sync: true });
  const log = createLogger(level, stdout);
  stdout.on("error", () => {
    log.level = "silent";
  });
  return log;
}
