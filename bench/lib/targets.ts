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

export function startBare(mockUrl: string, mode: "pipe" | "web"): Promise<Service> {
  return spawnService({
    name: `bare-${mode}`,
    command: process.execPath,
    args: [`${DIST}bench/bare-proxy.js`, "--upstream", originOf(mockUrl), "--mode", mode],
    ready: urlLine,
  });
}

export interface GatewayProcess extends Service {
  configDir: string;
}

/** The gateway as users run it: `node dist/src/main.js --config PATH`, info logging. */
export async function startGatewayProcess(variant: GatewayVariant, mockUrl: string, nodeArgs: string[] = []): Promise<GatewayProcess> {
  const port = await freePort();
  const { path, dir } = writeGatewayConfig(variant, port, mockUrl);
  const service = await spawnService({
    name: `gateway ${variant.name}`,
    command: process.execPath,
    args: [...nodeArgs, `${DIST}src/main.js`, "--config", path],
    env: { ...process.env, LOG_LEVEL: "info" },
    ready: gatewayListening,
    timeoutMs: 30_000,
  });
  return { ...service, configDir: dir };
}
