import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/util/canonical-json.js";
import { chainLine, chainRecord, GENESIS_HASH, hashRecord, verifyChain } from "../../src/audit/chain.js";
import type { ChainedRecord } from "../../src/audit/types.js";
import { makeRecord } from "./fixtures.js";

function chainOf(count: number): ChainedRecord[] {
  const records: ChainedRecord[] = [];
  let prev = GENESIS_HASH;
  for (let index = 0; index < count; index += 1) {
    const chained = chainRecord(makeRecord(), prev);
    records.push(chained);
    prev = chained.hash;
  }
  return records;
}

describe("canonicalJson", () => {
  it("sorts keys recursively and follows JSON.stringify for odd values", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined], c: undefined } })).toBe('{"a":{"d":[3,null]},"b":1}');
    expect(canonicalJson({ n: Number.NaN, t: new Date(0) })).toBe('{"n":null,"t":"1970-01-01T00:00:00.000Z"}');
  });
});

describe("chainRecord", () => {
  it("links to the previous hash and hashes the record without its own hash", () => {
    const [first, second] = chainOf(2);
    expect(first?.prev_hash).toBe(GENESIS_HASH);
    expect(second?.prev_hash).toBe(first?.hash);
    expect(first?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first && hashRecord(first)).toBe(first?.hash);
  });

  it("stores a line that verifies once parsed back, and an edited field in it breaks the hash", () => {
    const record = makeRecord({ body: { z: 1, a: [1, { y: 2, x: 3 }], "1": "integer key", s: "\ud800 é" } });
    const line = chainLine(record, GENESIS_HASH);
    expect(JSON.parse(line.text)).toEqual(chainRecord(record, GENESIS_HASH));
    const stored = JSON.parse(line.text) as ChainedRecord;
    expect(stored.hash).toBe(line.hash);
    expect(Object.keys(stored).slice(-2)).toEqual(["prev_hash", "hash"]);
    expect(verifyChain([stored], GENESIS_HASH)).toEqual({ ok: true, records: 1, last_hash: line.hash });
    const edited = JSON.parse(line.text.replace('"cost":0.000015', '"cost":0.000016')) as ChainedRecord;
    expect(edited.cost).toBe(0.000016);
    expect(verifyChain([edited])).toEqual({ ok: false, first_broken: { id: record.id, reason: "hash mismatch" } });
  });

  it("ignores chain fields a retried record already carries", () => {
    const record = makeRecord();
    const once = chainRecord(record, GENESIS_HASH);
    expect(chainRecord(once, GENESIS_HASH).hash).toBe(once.hash);
  });
});

describe("verifyChain", () => {
  it("accepts an intact chain", () => {
    const records = chainOf(5);
    expect(verifyChain(records, GENESIS_HASH)).toEqual({ ok: true, records: 5, last_hash: records[4]?.hash });
  });

  it("reports an edited field as a hash mismatch", () => {
    const records = chainOf(4);
    const edited = { ...records[2], cost: 0 } as ChainedRecord;
    records[2] = edited;
    expect(verifyChain(records)).toEqual({ ok: false, first_broken: { id: edited.id, reason: "hash mismatch" } });
  });

  it("reports a deleted record as a broken link at the next one", () => {
    const records = chainOf(4);
    const [removed] = records.splice(1, 1);
    expect(removed).toBeDefined();
    expect(verifyChain(records)).toEqual({ ok: false, first_broken: { id: records[1]?.id, reason: "broken link" } });
  });

  it("reports a rehashed edit at the record whose link it breaks", () => {
    const records = chainOf(3);
    const original = records[1];
    if (original === undefined) throw new Error("missing record");
    records[1] = chainRecord({ ...original, cost: 99 }, original.prev_hash);
    expect(verifyChain(records)).toEqual({ ok: false, first_broken: { id: records[2]?.id, reason: "broken link" } });
  });

  it("trusts the first prev_hash without a start and checks it with one", () => {
    const records = chainOf(3).slice(1);
    expect(verifyChain(records).ok).toBe(true);
    expect(verifyChain(records, GENESIS_HASH)).toEqual({ ok: false, first_broken: { id: records[0]?.id, reason: "broken link" } });
  });
});
