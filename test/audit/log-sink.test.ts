import pino from "pino";
import { describe, expect, it } from "vitest";
import { LogSink } from "../../src/audit/log-sink.js";
import { makeRecord } from "./fixtures.js";

describe("LogSink", () => {
  it("writes one line per record, even when the gateway logs at warn and above", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const sink = new LogSink(logger);
    const records = [makeRecord({ user: "ann" }), makeRecord({ user: "bob" })];
    await sink.write(records);
    logger.info("chatter at info stays out");
    const written = lines.map((line) => JSON.parse(line) as { msg: string; audit?: { id: string; user: string } });
    expect(written.map((entry) => entry.msg)).toEqual(["audit", "audit"]);
    expect(written.map((entry) => entry.audit?.id)).toEqual(records.map((record) => record.id));
  });
});
