import { parseArgs } from "node:util";

// Taken before anything else loads: SIGHUP's default would end a gateway still starting (loading its
// modules, connecting to Redis, reading its audit). One that comes then reloads the config once the
// gateway is up. The gateway's modules are imported below, after this.
let reload: (() => void) | null = null;
let reloadAsked = false;
process.on("SIGHUP", () => {
  if (reload === null) reloadAsked = true;
  else reload();
});
// So are SIGTERM and SIGINT: one that comes while the gateway starts drains it once it is up (it has
// nothing in flight yet), exiting 0 as a drain does, rather than ending it by the signal's default.
let stop: ((signal: string) => void) | null = null;
let stopAsked: string | null = null;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    if (stop === null) stopAsked ??= signal;
    else stop(signal);
  });
}

/**
 * The composition root's entry: the only place that reads process.env and argv. Arguments it does
 * not know are a usage error, never ignored: a mistyped `--config` must not start the example
 * config, whose demo keys are public.
 */
function configPath(argv: string[], env: NodeJS.ProcessEnv): string {
  let values: { config?: string | undefined };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: "string" } }, strict: true, allowPositionals: false }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: node dist/src/main.js [--config PATH]   (or GATEWAY_CONFIG=PATH)\n`);
    process.exit(2);
  }
  if (values.config === "") {
    process.stderr.write("--config needs a path\n");
    process.exit(2);
  }
  return values.config ?? (env.GATEWAY_CONFIG || undefined) ?? "config/gateway.yaml";
}

/** pino's levels, as `LOG_LEVEL` takes them. */
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

async function main(): Promise<void> {
  const [{ ConfigError }, { startGateway }, { createLogger }] = await Promise.all([import("./config/load.js"), import("./gateway.js"), import("./log/logger.js")]);
  const env = process.env;
  const level = env.LOG_LEVEL || "info";
  if (!LOG_LEVELS.includes(level)) {
    process.stderr.write(`LOG_LEVEL \`${level}\` is not a log level: use one of ${LOG_LEVELS.join(", ")}\n`);
    process.exit(2);
  }
  const log = createLogger(level);
  const path = configPath(process.argv.slice(2), env);
  const port = env.PORT === undefined || env.PORT === "" ? undefined : Number(env.PORT);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    process.stderr.write(`PORT \`${env.PORT}\` is not a port number (0 to 65535)\n`);
    process.exit(2);
  }
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway({ configPath: path, env, logger: log, watchConfig: true, ...(port === undefined ? {} : { port }) });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(`spark gateway failed to start: ${(error as Error).message}\n`);
    }
    process.exit(1);
  }
  log.info({ url: gateway.url, config: path }, "spark gateway listening");
  reload = () => gateway.reload();
  if (reloadAsked) reload();
  let stopping = false;
  stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "draining");
    gateway.shutdown().then(
      () => {
        log.info("stopped");
        log.flush();
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  if (stopAsked !== null) stop(stopAsked);
  process.on("unhandledRejection", (error) => log.error({ err: error }, "unhandled rejection"));
}

void main();
