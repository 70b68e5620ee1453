import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const main = join(import.meta.dirname, "..", "..", "dist", "src", "main.js");

/** The built entry point, as `npm start` runs it; exits before listening in every case here. */
function start(args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 10_000, env: { ...process.env, GATEWAY_CONFIG: "" } });
  return { status: result.status, stderr: result.stderr };
}

describe("the gateway's command line", () => {
  it("refuses arguments it does not know with a usage error (exit 2), rather than start the example config", () => {
    for (const args of [["--confg", "x.yaml"], ["x.yaml"], ["--config"], ["--config", ""]]) {
      const { status, stderr } = start(args);
      expect(status, args.join(" ")).toBe(2);
      expect(stderr).toMatch(/usage|needs a path|argument missing/);
    }
  });

  it("refuses a LOG_LEVEL that is not a level with one line naming the levels (exit 2), not a stack trace", () => {
    const result = spawnSync(process.execPath, [main, "--config", "/nonexistent/spark.yaml"], { encoding: "utf8", timeout: 10_000, env: { ...process.env, LOG_LEVEL: "bogus" } });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe("LOG_LEVEL `bogus` is not a log level: use one of trace, debug, info, warn, error, fatal, silent");
  });

  it("refuses a PORT that is not a port number with one line naming PORT (exit 2)", () => {
    for (const port of ["abc", "99999", "80.5"]) {
      const result = spawnSync(process.execPath, [main, "--config", "/nonexistent/spark.yaml"], { encoding: "utf8", timeout: 10_000, env: { ...process.env, PORT: port } });
      expect(result.status, port).toBe(2);
      expect(result.stderr.trim()).toBe(`PORT \`${port}\` is not a port number (0 to 65535)`);
    }
  });

  it("takes --config PATH and --config=PATH alike", () => {
    for (const args of [["--config", "/nonexistent/spark.yaml"], ["--config=/nonexistent/spark.yaml"]]) {
      const { status, stderr } = start(args);
      expect(status).toBe(1);
      expect(stderr).toContain("/nonexistent/spark.yaml");
    }
  });
});
