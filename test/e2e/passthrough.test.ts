import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits, reserveRequest, settleRequest } from "../state/fixtures.js";
import { stopKey } from "./governance.js";
import { auditRecords, type Harness, KEYS, keyEntry, MODELS, startHarness } from "./harness.js";

let h: Harness;
let offset = 0;
const SPENT = "sk-passthrough-spent";

beforeAll(async () => {
  h = await startHarness(
    `${MODELS}
passthrough: { upstream: openai, paths: [/v1/files, /v1/chat] }
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }", "{ requests_per_minute: 2 }")}
${keyEntry("spent", SPENT, "{ user: sam, role: developer, team: research }", "{ total_cost: 0.0002, tokens_per_minute: 2000 }")}
`,
    { clock: () => Date.now() + offset },
  );
});
afterAll(async () => h.close());

const get = (path: string, key: string = KEYS.alice): Promise<Response> => fetch(`${h.gateway.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe("passthrough paths", () => {
  it("relays a listed path with the upstream's key, audits it, and rate-limits it like any call", async () => {
    const first = await get("/v1/files");
    expect(first.status).toBe(200);
    expect(((await first.json()) as { object: string }).object).toBe("list");
    expect(h.mock.requests.at(-1)?.headers.authorization).toBe("Bearer sk-upstream-secret");
    expect((await get("/v1/files", "sk-nobody")).status).toBe(401);
    expect((await get("/v1/files")).status).toBe(200);
    const limited = await get("/v1/files");
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
    const records = (await auditRecords(h)).filter((r) => r.path === "/v1/files");
    expect(records.map((r) => r.status)).toEqual([200, 401, 200, 429]);
    expect(records[0]).toMatchObject({ action: "passthrough", key_id: "alice-dev", cost: 0 });
  });

  it("streams an upload to the upstream as it arrives, past max_body_bytes (a file is as large as the upstream takes)", async () => {
    const half = Buffer.alloc(5_500_000, "a");
    const url = new URL(`${h.gateway.url}/v1/files`);
    let secondHalfAt = 0;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { authorization: `Bearer ${SPENT}`, "content-type": "application/octet-stream" } },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.write(half);
      setTimeout(() => {
        secondHalfAt = Date.now();
        req.end(half);
      }, 400);
    });
    const seen = h.mock.requests.at(-1)!;
    expect(seen.path).toBe("/v1/files");
    // The mock answers a POST it does not know with 404, relayed; what matters is what it received, and when.
    expect(status).toBe(404);
    expect(seen.rawBody.length).toBe(11_000_000);
    expect(seen.headers["content-type"]).toBe("application/octet-stream");
    expect(seen.receivedAt).toBeLessThan(secondHalfAt);
  });

  it("never sends a request to another origin than the upstream's, whatever the path parses as", async () => {
    const open = await startHarness(`${MODELS}
passthrough: { upstream: openai, paths: [/v1/] }
keys:
${keyEntry("alice-dev", KEYS.alice, "{ user: alice, role: developer, team: research }")}
`);
    try {
      const before = open.mock.requests.length;
      const url = new URL(open.gateway.url);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: url.hostname, port: url.port, path: "/v1///127.0.0.1:9/steal", method: "GET", headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(404);
      expect(open.mock.requests.length).toBe(before);
    } finally {
      await open.close();
    }
  });

  it("records a client that goes away mid-upload as 499 client_closed, not as an upstream failure", async () => {
    offset += 60_000;
    const url = new URL(`${h.gateway.url}/v1/files`);
    await new Promise<void>((resolve) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { authorization: `Bearer ${KEYS.alice}`, "content-length": "2000000" } });
      req.on("error", () => resolve());
      req.write(Buffer.alloc(100_000, "a"));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    let record: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && record?.status !== 499; i++) {
      record = (await auditRecords(h)).filter((r) => r.path === "/v1/files").at(-1);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(record).toMatchObject({ status: 499, error_code: "client_closed", action: "passthrough" });
  });

  it("is not priced: a key whose budget is overspent (the upstream billed more than reserved) still reaches it", async () => {
    // An answer billed above its reservation takes the key past its total budget.
    const store = h.gateway.services.store;
    const request = reserveRequest("key:spent", limits({ totalMicros: 1_000_000 }));
    const granted = await store.reserve(request, Date.now());
    await store.settle(settleRequest(request, granted, Date.now(), { actualMicros: 300 }), Date.now());
    const refused = await fetch(`${h.gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${SPENT}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "say:more" }] }),
    });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("budget_exceeded");
    expect((await get("/v1/files", SPENT)).status).toBe(200);
  });

  it("relays what is under a listed path, and keeps unlisted paths at 404", async () => {
    // The first test spent the key's rate: a minute later it is back.
    offset += 60_000;
    const retrieve = await get("/v1/files/file-abc?purpose=x");
    expect(h.mock.requests.at(-1)?.url).toBe("/v1/files/file-abc?purpose=x");
    expect(retrieve.headers.get("x-request-id")).toMatch(/^req_/);
    for (const path of ["/v1/batches", "/v1/filesystem"]) {
      const response = await get(path);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
    expect(h.mock.requests.at(-1)?.url).toBe("/v1/files/file-abc?purpose=x");
  });

  it("never relays, under a listed prefix, a governed path however written, nor a stored answer", async () => {
    offset += 60_000;
    const before = h.mock.requests.length;
    // A stored completion read back by id could be an answer the gateway refused.
    expect((await get("/v1/chat/completions/chatcmpl-1")).status).toBe(404);
    const paths = [
      "/v1/chat/completions/",
      "/v1/chat//completions",
      "/v1/chat/completions//",
      "/v1/Chat/completions",
      "/v1/chat/completions;x",
      "/v1/chat%2fcompletions",
      "/v1/chat/completions%2F",
      // Read leniently, these leave the listed path: a stored answer, and an endpoint not listed.
      "/v1/files/..;/responses/resp_1",
      "/v1/files/%252E%252E/responses/resp_1",
      "/v1/files/..;/batches",
      // Control characters and backslashes a URL parser drops or reads as separators.
      "/v1/files/%2e%0a%2e/chat/completions",
      "/v1/files/.%09./chat/completions",
      "/v1/chat/complet%0dions",
      "/v1/chat/completions%00",
      "/v1/chat/completions%5cchatcmpl-1",
      "/v1/files/%5c..%5cresponses",
      // Suffixes some frameworks route on; overlong, look-alike and invisible characters lenient parsers fold.
      "/v1/chat/completions.json",
      "/v1/chat/completions:run",
      "/v1/files/%c0%ae%c0%ae/responses",
      "/v1/files/%ef%bc%8e%ef%bc%8e/responses",
      "/v1/chat/complet%E2%80%8Bions",
      "/v1/files/%u002e%u002e/responses",
    ];
    for (const path of paths) {
      const response = await fetch(`${h.gateway.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(response.status, path).toBe(404);
    }
    expect(h.mock.requests.length).toBe(before);
  });

  it("ends an upload in flight when its key is stopped: 403 emergency_stop, and the upstream never gets the whole file", async () => {
    offset += 60_000;
    const url = new URL(`${h.gateway.url}/v1/files`);
    const before = h.mock.requests.filter((r) => r.path === "/v1/files").length;
    const answered = new Promise<{ status: number; body: string }>((resolve) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { authorization: `Bearer ${KEYS.alice}`, "content-length": "2000000" } },
        (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", () => resolve({ status: 0, body: "" }));
      req.write(Buffer.alloc(100_000, "a"));
      setTimeout(() => req.end(Buffer.alloc(1_900_000, "a")), 1500);
    });
    await new Promise((r) => setTimeout(r, 200));
    await stopKey(h, "alice-dev", "upload frozen");
    const outcome = await answered;
    expect(outcome.status).toBe(403);
    expect(outcome.body).toContain("emergency_stop");
    await new Promise((r) => setTimeout(r, 1600));
    // The upstream saw the upload begin, then cut: it never got the whole file, nor answered it.
    const seen = h.mock.requests.filter((r) => r.path === "/v1/files").slice(before);
    for (const upload of seen) {
      expect(upload.rawBody.length).toBeLessThan(2_000_000);
      expect(upload.status).toBeUndefined();
    }
    const record = (await auditRecords(h)).filter((r) => r.path === "/v1/files").at(-1);
    expect(record).toMatchObject({ status: 403, error_code: "emergency_stop", action: "passthrough" });
  });
});
