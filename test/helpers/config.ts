import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashKey } from "../../src/auth/keys.js";

/** Writes YAML into a fresh temp directory (so relative paths in it cannot collide) and returns the file path. */
export function writeTempConfig(yaml: string, fileName = "gateway.yaml"): string {
  const dir = mkdtempSync(join(tmpdir(), "spark-gw-config-"));
  const path = join(dir, fileName);
  writeFileSync(path, yaml, "utf8");
  return path;
}

/**
 * The head of a config for a test that starts its own gateway: loopback listener, an admin token, a
 * memory store without snapshot, one upstream, `gpt-4o-mini` priced, and one key (user kim, team t).
 */
export function oneKeyConfig(options: { admin: string; upstreamUrl: string; key: string; upstreamKey?: string }): string {
  return `server: { host: 127.0.0.1, port: 0 }
admin: { token: ${options.admin} }
store: { memory: { snapshot: null } }
upstreams: { openai: { base_url: "${options.upstreamUrl}", api_key: ${options.upstreamKey ?? "sk-up"} } }
models: { gpt-4o-mini: { upstream: openai, input_per_1m: 1, output_per_1m: 2 } }
keys: [{ id: k, key_hash: "${hashKey(options.key)}", subject: { user: kim, role: developer, team: t } }]
`;
}
