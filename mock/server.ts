#!/usr/bin/env node
// CLI for the demo and benchmarks: `node dist/mock/server.js --port 9999 --latency-ms 0 --chunk-delay-ms 0`.
// Prints the base URL on stdout (one line) so scripts can capture it.
import { parseArgs } from "node:util";
import { startMockUpstream } from "./upstream.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9999" },
    host: { type: "string", default: "127.0.0.1" },
    "latency-ms": { type: "string", default: "0" },
    "chunk-delay-ms": { type: "string", default: "0" },
    chunks: { type: "string", default: "4" },
    // Off by default: a long benchmark would otherwise accumulate every request body.
    record: { type: "boolean", default: false },
  },
});

function int(name: string, v: string): number {
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`invalid --${name}: ${v}\n`);
    process.exit(2);
  }
  return n;
}

const mock = await startMockUpstream({
  port: int("port", values.port),
  host: values.host,
  latencyMs: int("latency-ms", values["latency-ms"]),
  chunkDelayMs: int("chunk-delay-ms", values["chunk-delay-ms"]),
  chunks: int("chunks", values.chunks),
  record: values.record,
});
process.stdout.write(`${mock.url}\n`);

const shutdown = (): void => {
  void mock.close().then(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
