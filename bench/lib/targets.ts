import { fileURLToPath } from "node:url";
import { type GatewayVariant, writeGatewayConfig } from "./gateway-config.js";
import { freePort, gatewayListening, type Service, spawnService, urlLine } from "./procs.js";

/** dist/ (this file runs as dist/bench/lib/targets.js). */
const DIST = fileURLToPath(new URL("../../", import.meta.url));

export async function startMock(): Promise<Service> {
  const port = await freePort();
  return spawnService({
    name: "mock",
    command: process.execPath,
    args: [`${DIST}mock/server.js`, "--port", String(port), "--latency-ms", "0", "--chunk-delay-ms", "0"],
    ready: urlLine,
  });
}

/** The mock's origin (its URL without `/v1`). */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/**
 * Node with `args`, or under `wrapper` (a command and its arguments, e.g. valgrind's) when given.
 */
function nodeCommand(wrapper: readonly string[], args: string[]): { command: string; args: string[] } {
  const [command, ...wrapperArgs] = wrapper;
  return command === undefined ? { command: process.execPath, args } : { command, args: [...wrapperArgs, process.execPath, ...args] };
}

/** Under a wrapper (valgrind) a process starts tens of times slower. */
const readyWithin = (wrapper: readonly string[]): number => (wrapper.length > 0 ? 300_000 : 30_000);

export function startBare(mockUrl: string, mode: "pipe" | "web", nodeArgs: string[] = [], wrapper: readonly string[] = []): Promise<Service> {
  return spawnService({
    name: `bare-${mode}`,
    ...nodeCommand(wrapper, [...nodeArgs, `${DIST}bench/bare-proxy.js`, "--upstream", originOf(mockUrl), "--mode", mode]),
    ready: urlLine,
    timeoutMs: readyWithin(wrapper),
  });
}

export interface GatewayProcess extends Service {
  configDir: string;
}

/**
 * What `npm start` and the Dockerfile give node: a young generation twice V8's default, since a
 * call's objects live across its upstream round trip and a small one copies them out repeatedly.
 */
const GATEWAY_NODE_FLAGS = ["--max-semi-space-size=32"];

/** The gateway as users run it: `node --max-semi-space-size=32 dist/src/main.js --config PATH`, info logging. */
export async function startGatewayProcess(variant: GatewayVariant, mockUrl: string, nodeArgs: string[] = [], wrapper: readonly string[] = []): Promise<GatewayProcess> {
  const port = await freePort();
  const { path, dir } = writeGatewayConfig(variant, port, mockUrl);
  const service = await spawnService({
    name: `gateway ${variant.name}`,
    ...nodeCommand(wrapper, [...GATEWAY_NODE_FLAGS, ...nodeArgs, `${DIST}src/main.js`, "--config", path]),
    env: { ...process.env, LOG_LEVEL: "info" },
    ready: gatewayListening,
    timeoutMs: readyWithin(wrapper),
  });
  return { ...service, configDir: dir };
}
