import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes YAML into a fresh temp directory (so relative paths in it cannot collide) and returns the file path. */
export function writeTempConfig(yaml: string, fileName = "gateway.yaml"): string {
  const dir = mkdtempSync(join(tmpdir(), "spark-gw-config-"));
  const path = join(dir, fileName);
  writeFileSync(path, yaml, "utf8");
  return path;
}
