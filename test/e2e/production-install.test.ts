import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, startProcess } from "../helpers/index.js";

const root = join(import.meta.dirname, "..", "..");

/** The Dockerfile's runtime stage, reproduced without a Docker engine: production install of the built output. */
describe("production image steps", () => {
  it("installs with npm ci --omit=dev --ignore-scripts, starts from dist and answers /healthz", async () => {
    expect(existsSync(join(root, "dist/src/main.js")), "run `npm run build` first (npm test does)").toBe(true);
    const app = mkdtempSync(join(tmpdir(), "spark-prod-"));
    for (const entry of ["package.json", "package-lock.json", "dist", "config"]) cpSync(join(root, entry), join(app, entry), { recursive: true });
    execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: app, stdio: "pipe" });
    expect(existsSync(join(app, "node_modules/vitest"))).toBe(false);
    const port = await freePort();
    const gateway = await startProcess("node", ["dist/src/main.js"], {
      cwd: app,
      env: { PORT: String(port), NODE_ENV: "production" },
      waitForUrl: `http://127.0.0.1:${port}/healthz`,
    });
    try {
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
    } finally {
      expect(await gateway.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);
});
