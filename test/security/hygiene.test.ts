import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";
import { bearer, chatBody, errorCode, leaksOf, rawBody, SECRETS, type SecGateway, sleep, startSecGateway, until } from "./support.js";
import { connect } from "node:net";

let g: SecGateway;
let evil: MockUpstream;
const BODY = chatBody("say:hello");

beforeAll(async () => {
  evil = await startMockUpstream();
  g = await startSecGateway({
    server: "max_json_depth: 8",
    body: `${(await import("./support.js")).MODELS}${(await import("./support.js")).DEFAULT_KEYS}
passthrough: { upstream: openai, paths: [/v1/files, /v1/files/] }
`,
  });
});
afterAll(async () => {
  await g?.close();
  await evil?.close();
});

const post = (path: string, headers: string, body: string = BODY): string =>
  `POST ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;

describe("proxy hygiene", () => {
  it("the client's Authorization (and other credentials) never reach the upstream; its own key does", async () => {
    const res = await g.request("/v1/chat/completions", {
      method: "POST",
      headers: { ...bearer(SECRETS.alice), "x-api-key": SECRETS.alice, "api-key": SECRETS.alice, cookie: `s=${SECRETS.alice}`, "x-kept": "yes" },
      body: BODY,
    });
    expect(res.status).toBe(200);
    const seen = g.mock.requests.at(-1)!;
    expect(seen.headers.authorization).toBe(`Bearer ${SECRETS.upstream}`);
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(seen.headers["api-key"]).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers["x-kept"]).toBe("yes");
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(SECRETS.alice);
  });

  it("a compressed body is invalid_json that says why; an encoding claimed of plain JSON is not sent upstream with the JSON read", async () => {
    const { gzipSync } = await import("node:zlib");
    const gz = await g.request("/v1/chat/completions", {
      method: "POST",
      headers: { ...bearer(SECRETS.alice), "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(BODY),
    });
    expect(gz.status).toBe(400);
    const { error } = JSON.parse(gz.text) as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_json");
    expect(error.message).toContain("content-encoding: gzip");
    const plain = await g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer(SECRETS.alice), "content-encoding": "br" }, body: BODY });
    expect(plain.status).toBe(200);
    const seen = g.mock.requests.at(-1)!;
    expect(seen.headers["content-encoding"]).toBeUndefined();
    expect(seen.headers["accept-encoding"]).toBe("identity");
  });

  it("drops hop-by-hop headers and every header the Connection header names", async () => {
    const res = await g.raw(
      post(
        "/v1/chat/completions",
        "Connection: X-Hop-One, x-hop-two\r\nX-Hop-One: 1\r\nX-Hop-Two: 2\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-Trail\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\nX-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\nX-Kept: yes\r\n",
      ),
    );
    expect(res.statuses, res.text).toEqual([200]);
    const seen = g.mock.requests.at(-1)!;
    for (const name of ["x-hop-one", "x-hop-two", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authorization", "forwarded", "x-forwarded-for"]) {
      expect(seen.headers[name], name).toBeUndefined();
    }
    expect(seen.headers["x-kept"]).toBe("yes");
  });

  it("Transfer-Encoding / Content-Length conflicts are refused and never smuggle a second request", async () => {
    const smuggled = `GET /admin/keys HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.admin}\r\n\r\n`;
    const chunked = `${Buffer.byteLength(BODY).toString(16)}\r\n${BODY}\r\n0\r\n\r\n`;
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Type: application/json\r\n`;
    const variants = [
      // CL.TE: front end reads CL, back end chunked — the classic.
      `${head}Content-Length: ${chunked.length + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}${smuggled}`,
      `${head}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunked}${smuggled}`,
      `${head}Content-Length: 4\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}${smuggled}`,
      `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunked}${smuggled}`,
      `${head}Transfer-Encoding: identity, chunked\r\nContent-Length: 3\r\n\r\n${chunked}${smuggled}`,
      `${head}Transfer-Encoding: xchunked\r\n\r\n${chunked}${smuggled}`,
      `${head}Transfer-Encoding : chunked\r\n\r\n${chunked}${smuggled}`,
      `${head}Transfer-Encoding:\tchunked\r\nContent-Length: 0\r\n\r\n${chunked}${smuggled}`,
      `${head}Content-Length: ${Buffer.byteLength(BODY)}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n${BODY}${smuggled}`,
      `${head}Content-Length: -1\r\n\r\n${BODY}${smuggled}`,
      `${head}Content-Length: 1e2\r\n\r\n${BODY}${smuggled}`,
    ];
    const before = await g.records();
    const mockBefore = g.mock.requests.length;
    for (const wire of variants) {
      const res = await g.raw(wire, { timeoutMs: 5_000 });
      const label = JSON.stringify(wire.slice(head.length, head.length + 80));
      expect(res.statuses.length, `${label}: ${res.text}`).toBe(1);
      expect(res.statuses[0], `${label}: ${res.text}`).toBe(400);
      expect(errorCode(rawBody(res.text))).not.toBeNull();
      expect(res.text).not.toContain('"object":"list"');
      expect(res.closed).toBe(true);
    }
    expect(g.mock.requests.length).toBe(mockBefore);
    const after = await g.records();
    expect(after.slice(before.length).filter((r) => String(r.path).startsWith("/admin"))).toEqual([]);
  });

  it("dot-segment paths never reach the admin API nor escape the upstream base path", async () => {
    const paths = [
      "/v1/../admin/keys",
      "/v1/%2e%2e/admin/keys",
      "/v1/%2E%2E/admin/keys",
      "/v1/.%2e/admin/keys",
      "/v1/./../admin/keys",
      "/v1/chat/completions/../../admin/keys",
      "/v1/files/../../admin/keys",
      "/v1/files/%2e%2e/%2e%2e/secret",
      "/v1/files/..%2f..%2fsecret",
      "/v1/files/%2e%2e%2f%2e%2e%2fsecret",
      "/v1/models/..",
      "/v1/files/..",
      "/v1/..;/admin/keys",
    ];
    const mockBefore = g.mock.requests.length;
    for (const path of paths) {
      for (const token of [SECRETS.admin, SECRETS.alice]) {
        for (const method of ["GET", "POST"]) {
          const body = method === "POST" ? "{}" : "";
          const res = await g.raw(
            `${method} ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
          const label = `${method} ${path} (${token === SECRETS.admin ? "admin token" : "virtual key"}): ${res.text.slice(0, 300)}`;
          expect(res.statuses.length, label).toBe(1);
          expect(res.statuses[0], label).toBeGreaterThanOrEqual(400);
          expect(res.statuses[0], label).toBeLessThan(500);
          expect(res.text, label).not.toContain('"object":"list"');
        }
      }
    }
    for (const seen of g.mock.requests.slice(mockBefore)) {
      expect(seen.url.startsWith("/v1/files/"), seen.url).toBe(true);
      // Not even once the upstream decodes it.
      expect(decodeURIComponent(seen.url).split(/[/\\]/)).not.toContain("..");
    }
    const records = await g.records();
    expect(records.filter((r) => String(r.action ?? "").startsWith("admin.") && r.status === 200)).toEqual([]);
  });

  it("answers a request without Host, or with an unknown Expect, as any other: OpenAI-shaped, with an id", async () => {
    const body = chatBody("say:hi");
    const noHost = await g.raw(`POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    expect(noHost.statuses).toEqual([200]);
    expect(noHost.text).toMatch(/x-request-id: req_/i);
    const expect417 = await g.raw(`GET /v1/models HTTP/1.1\r\nHost: gw\r\nExpect: foo\r\nConnection: close\r\n\r\n`);
    expect(expect417.statuses).toEqual([401]);
    expect(errorCode(rawBody(expect417.text))).toBe("invalid_api_key");
  });

  it("answers a missing or malformed Host on every route as any other request: OpenAI-shaped, with an id, audited", async () => {
    const cases = [
      { line: "GET /v1/models HTTP/1.1", host: "Host: a b\r\n", auth: SECRETS.alice, status: 200 },
      { line: "GET /v1/models HTTP/1.1", host: "Host:\r\n", auth: SECRETS.alice, status: 200 },
      { line: "GET /admin/keys HTTP/1.1", host: "Host: a b\r\n", auth: SECRETS.admin, status: 200 },
      { line: "GET /admin/keys HTTP/1.1", host: "Host: gw:999999\r\n", auth: "wrong", status: 401 },
      { line: "GET /healthz HTTP/1.0", host: "", auth: "", status: 200 },
    ];
    const ids: string[] = [];
    for (const c of cases) {
      const res = await g.raw(`${c.line}\r\n${c.host}Authorization: Bearer ${c.auth}\r\nConnection: close\r\n\r\n`);
      expect(res.statuses, `${c.line} ${c.host}`).toEqual([c.status]);
      expect(res.text).toMatch(/content-type: application\/json/i);
      const id = /x-request-id: (\S+)/i.exec(res.text)?.[1];
      expect(id).toBeDefined();
      if (c.status === 401) expect(errorCode(rawBody(res.text))).toBe("invalid_admin_token");
      if (!c.line.includes("healthz")) ids.push(id as string);
    }
    await until(async () => {
      const seen = new Set((await g.records()).map((r) => r.id));
      return ids.every((id) => seen.has(id));
    });
  });

  it("answers a request target hono cannot route (a backslash, `*`, a broken absolute URL) OpenAI-shaped, with an id, audited under /v1", async () => {
    const mockBefore = g.mock.requests.length;
    const cases = ["POST /v1/chat\\completions HTTP/1.1", "OPTIONS * HTTP/1.1", "GET http://[::1 HTTP/1.1"];
    const ids: string[] = [];
    for (const line of cases) {
      const res = await g.raw(`${line}\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(res.statuses, line).toEqual([400]);
      expect(errorCode(rawBody(res.text)), line).toBe("invalid_body");
      const id = /x-request-id: (\S+)/i.exec(res.text)?.[1];
      expect(id, line).toBeDefined();
      if (line.includes("/v1/")) ids.push(id as string);
    }
    await until(async () => {
      const seen = new Set((await g.records()).map((r) => r.id));
      return ids.every((id) => seen.has(id));
    });
    expect(g.mock.requests.length).toBe(mockBefore);
  });

  it("refuses a body that repeats a key, so the upstream cannot act on a value the rules never saw", async () => {
    const before = g.mock.requests.length;
    const res = await g.request("/v1/chat/completions", {
      method: "POST",
      headers: bearer(SECRETS.alice),
      body: '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}',
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: "invalid_body", param: "model", type: "invalid_request_error" } });
    expect(g.mock.requests.length).toBe(before);
    const id = res.headers["x-request-id"];
    await until(async () => (await g.records()).some((r) => r.id === id && r.error_code === "invalid_body"));
  });

  it("quotes an oversized model name or approval id cut short, in the error and in the audit", async () => {
    const model = "m".repeat(100_000);
    const res = await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }) });
    expect(res.status).toBe(404);
    expect(res.text.length).toBeLessThan(1_000);
    expect(res.text).toContain("(100000 characters)");
    const approval = await g.request("/v1/chat/completions", {
      method: "POST",
      headers: { ...bearer(SECRETS.alice), "x-approval-id": "a".repeat(10_000) },
      body: chatBody("say:hi"),
    });
    expect(approval.status).toBe(403);
    expect(approval.text.length).toBeLessThan(1_000);
    const id = approval.headers["x-request-id"];
    await until(async () => (await g.records()).some((r) => r.id === id));
    const record = (await g.records()).find((r) => r.id === id)!;
    expect(String(record.approval_id).length).toBeLessThanOrEqual(200);
    expect(JSON.stringify((await g.records()).filter((r) => r.error_code === "model_not_found").at(-1)).length).toBeLessThan(3_000);
  });

  it("audits a refused dot-segment path under /v1 or /admin, and a request line too long to read whole, under their x-request-id", async () => {
    const targets = ["/v1/%2e%2e/chat/completions", "/admin/./keys", "/v1/../admin/keys", `/v1/models?${"a".repeat(80_000)}`];
    const ids: string[] = [];
    for (const target of targets) {
      const res = await g.raw(`GET ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.admin}\r\nConnection: close\r\n\r\n`);
      expect(res.statuses[0], target.slice(0, 40)).toBeGreaterThanOrEqual(400);
      const id = /x-request-id: (\S+)/i.exec(res.text)?.[1];
      expect(id, target.slice(0, 40)).toBeDefined();
      ids.push(id as string);
    }
    await until(async () => {
      const seen = new Set((await g.records()).map((r) => r.id));
      return ids.every((id) => seen.has(id));
    });
  });

  it("Host, X-Forwarded-Host, Forwarded and an absolute request URI never change the upstream URL", async () => {
    const target = `127.0.0.1:${evil.port}`;
    const before = g.mock.requests.length;
    const res1 = await g.raw(
      post("/v1/chat/completions", `X-Forwarded-Host: ${target}\r\nX-Forwarded-Proto: http\r\nForwarded: host=${target};proto=http\r\nX-Original-URL: /admin/keys\r\nX-Rewrite-URL: /admin/keys\r\nX-Forwarded-Prefix: /evil\r\n`).replace("Host: gw", `Host: ${target}`),
    );
    expect(res1.statuses).toEqual([200]);
    const res2 = await g.raw(post(`http://${target}/v1/chat/completions`, "").replace("Host: gw", `Host: ${target}`));
    expect(res2.statuses).toEqual([200]);
    const res3 = await g.raw(
      `GET http://${target}/v1/files HTTP/1.1\r\nHost: ${target}\r\nAuthorization: Bearer ${SECRETS.alice}\r\nX-Forwarded-Host: ${target}\r\nConnection: close\r\n\r\n`,
    );
    expect(res3.statuses).toEqual([200]);
    expect(evil.requestCount).toBe(0);
    const seen = g.mock.requests.slice(before);
    expect(seen.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/chat/completions", "/v1/files"]);
    for (const r of seen) expect(r.headers.host).toBe(`127.0.0.1:${g.mock.port}`);
  });
});

describe("request hygiene (CONTRACT.md §1, §3)", () => {
  it("JSON nested deeper than server.max_json_depth is 400 invalid_body on every endpoint, never a 5xx", async () => {
    const deep = (n: number): string => `${"[".repeat(n)}${"]".repeat(n)}`;
    for (const [path, template] of [
      ["/v1/chat/completions", (v: string) => `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":${v}}`],
      ["/v1/responses", (v: string) => `{"model":"gpt-4o-mini","input":"hi","x":${v}}`],
      ["/v1/embeddings", (v: string) => `{"model":"text-embedding-3-small","input":"hi","x":${v}}`],
    ] as const) {
      for (const depth of [8, 50, 10_000, 1_000_000]) {
        const res = await g.request(path, { method: "POST", headers: bearer(SECRETS.alice), body: template(deep(depth)), record: false });
        expect(res.status, `${path} depth ${depth + 1}`).toBe(400);
        expect(errorCode(res.text)).toBe("invalid_body");
      }
      const ok = await g.request(path, { method: "POST", headers: bearer(SECRETS.alice), body: template(deep(7)) });
      expect(ok.status, `${path} depth 8: ${ok.text}`).toBe(200);
    }
    // Unparseable and deep: still the depth answer, still no RangeError.
    const open = await g.request("/v1/chat/completions", { method: "POST", headers: bearer(SECRETS.alice), body: "{".repeat(500_000), record: false });
    expect(open.status).toBe(400);
  });

  it("request headers over 16 KB get 431 headers_too_large with a JSON body; just under is served", async () => {
    const big = await g.raw(post("/v1/chat/completions", `X-Big: ${"a".repeat(17 * 1024)}\r\n`));
    expect(big.statuses).toEqual([431]);
    expect(big.text.toLowerCase()).toContain("content-type: application/json");
    const id = /\r\nx-request-id: (req_\w+)\r\n/.exec(big.text)?.[1];
    expect(id).toBeDefined();
    expect(errorCode(rawBody(big.text))).toBe("headers_too_large");
    // Refused by Node before any handler, and still one audit record under the id it was answered with.
    expect((await g.records()).find((r) => r.id === id)).toMatchObject({ method: "POST", path: "/v1/chat/completions", status: 431, error_code: "headers_too_large" });
    const many = await g.raw(post("/v1/chat/completions", Array.from({ length: 400 }, (_, i) => `X-H${i}: ${"b".repeat(40)}\r\n`).join("")));
    expect(many.statuses).toEqual([431]);
    const under = await g.raw(post("/v1/chat/completions", `X-Big: ${"a".repeat(14 * 1024)}\r\n`));
    expect(under.statuses).toEqual([200]);
  });

  it("a body Node finds malformed while the call reads it, or a malformed request pipelined behind another, gets one answer and one record each", async () => {
    const ids = (text: string): string[] => [...text.matchAll(/\r\nx-request-id: (req_\w+)\r\n/g)].map((m) => m[1] as string);
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const bad = '5\r\n{"mod\r\nZZZ\r\n';
    const before = (await g.records()).length;
    // The bad chunk with the head, and after it in a later write: the call has begun reading its body.
    const together = await g.raw(head + bad);
    const later = await sendInParts([head, bad]);
    for (const answer of [together.text, later]) {
      expect(answer.match(/^HTTP\/1\.1 /gm)).toHaveLength(1);
      expect(errorCode(rawBody(answer))).toBe("invalid_body");
    }
    const answered = [...ids(together.text), ...ids(later)];
    expect(answered).toHaveLength(2);
    await until(async () => (await g.records()).length >= before + 2);
    await sleep(100);
    const added = (await g.records()).slice(before);
    expect(added.map((r) => [r.id, r.status, r.error_code])).toEqual(answered.map((id) => [id, 400, "invalid_body"]));

    // A broken body behind a call still streaming its answer: answered after it, under its own id and path.
    const slow = chatBody("tokens:6 chunks:6 delay:60", { stream: true });
    const brokenKeys = `POST /admin/keys HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.admin}\r\nTransfer-Encoding: chunked\r\n\r\n${bad}`;
    const behind = await g.raw(post("/v1/chat/completions", "", slow).replace("Connection: close\r\n", "") + brokenKeys);
    expect([...behind.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200, 400]);
    const [, brokenId] = ids(behind.text);
    await until(async () => (await g.records()).some((r) => r.id === brokenId));
    await sleep(100);
    const keysRecords = (await g.records()).filter((r) => r.path === "/admin/keys" && r.method === "POST");
    expect(keysRecords.filter((r) => r.id === brokenId)).toMatchObject([{ status: 400, error_code: "invalid_body" }]);
    expect(keysRecords.filter((r) => r.status === 499)).toEqual([]);

    // Behind two answers still going out (a stream, a plain call): each goes out whole, then the 400.
    const fast = post("/v1/chat/completions", "", BODY).replace("Connection: close\r\n", "");
    const twoAhead = await g.raw(post("/v1/chat/completions", "", slow).replace("Connection: close\r\n", "") + fast + brokenKeys);
    expect([...twoAhead.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200, 200, 400]);
    expect(twoAhead.text).toContain("data: [DONE]");

    // Refused before its body was read (a bad key), then the body breaks: one answer, the refusal's,
    // whether the broken part comes later or in the same write.
    const refusedFirst = await sendInParts([head.replace(SECRETS.alice, "sk-not-a-key"), bad]);
    const refusedTogether = await g.raw(head.replace(SECRETS.alice, "sk-not-a-key") + bad);
    for (const refused of [refusedFirst, refusedTogether.text]) {
      expect(refused.match(/^HTTP\/1\.1 /gm)).toHaveLength(1);
      expect(errorCode(rawBody(refused))).toBe("invalid_api_key");
    }

    // A good request, then one with oversized headers in the same write: the first is answered first.
    const pipelined = await g.raw(
      `GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRETS.alice}\r\n\r\nGET /v1/nothing HTTP/1.1\r\nHost: gw\r\nX-Big: ${"a".repeat(17_000)}\r\n\r\n`,
    );
    // The 431's status line follows the listing's body directly, which ends without a line break.
    expect([...pipelined.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200, 431]);
    const [listed, refused] = ids(pipelined.text);
    await until(async () => (await g.records()).some((r) => r.id === refused));
    const records = await g.records();
    expect(records.find((r) => r.id === listed)).toMatchObject({ path: "/v1/models", status: 200 });
    expect(records.find((r) => r.id === refused)).toMatchObject({ path: "/v1/nothing", status: 431, error_code: "headers_too_large" });
    // Behind a request with a body: its line follows that body, with no blank line before it.
    const afterBody = await g.raw(`${post("/v1/chat/completions", "", BODY).replace("Connection: close\r\n", "")}GET /v1/models/m7 HTTP/1.1\r\nHost: gw\r\nX-Big: ${"a".repeat(17_000)}\r\n\r\n`);
    const [, overflowed] = ids(afterBody.text);
    await until(async () => (await g.records()).some((r) => r.id === overflowed));
    expect((await g.records()).find((r) => r.id === overflowed)).toMatchObject({ method: "GET", path: "/v1/models/m7", status: 431 });
  });

  it("the client's x-request-id is kept as client_request_id and never becomes the audit id", async () => {
    const first = await g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer(SECRETS.alice), "x-request-id": "req_client_chosen" }, body: BODY });
    const auditId = String(first.headers["x-request-id"]);
    expect(auditId).not.toBe("req_client_chosen");
    expect(auditId).toMatch(/^req_/);
    // Replaying an existing audit id as the client's id does not collide with it.
    const second = await g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer(SECRETS.alice), "x-request-id": auditId }, body: BODY });
    const secondId = String(second.headers["x-request-id"]);
    expect(secondId).not.toBe(auditId);
    const refused = await g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer("sk-nope"), "x-request-id": "req_refused" }, body: BODY });
    expect(refused.status).toBe(401);
    const records = await g.records();
    const byId = (id: string) => records.filter((r) => r.id === id);
    expect(byId(auditId)).toHaveLength(1);
    expect(byId(auditId)[0]!.client_request_id).toBe("req_client_chosen");
    expect(byId(secondId)[0]!.client_request_id).toBe(auditId);
    expect(byId("req_client_chosen")).toEqual([]);
    expect(byId(String(refused.headers["x-request-id"]))[0]!.client_request_id).toBe("req_refused");
  });

  it("x-forwarded-for is ignored from untrusted peers", async () => {
    const res = await g.request("/v1/chat/completions", { method: "POST", headers: { ...bearer(SECRETS.alice), "x-forwarded-for": "203.0.113.7, 198.51.100.2" }, body: BODY });
    const record = (await g.records()).find((r) => r.id === res.headers["x-request-id"]);
    expect(record?.ip).toBe("127.0.0.1");
  });

  it("x-forwarded-for is believed only from trusted_proxies (right-most untrusted hop)", async () => {
    const trusting = await startSecGateway({ server: 'trusted_proxies: ["127.0.0.1/32", "10.0.0.0/8"]', sharedMock: g.mock });
    try {
      const cases: Array<[string | undefined, string | null]> = [
        ["203.0.113.7", "203.0.113.7"],
        ["198.51.100.1, 203.0.113.7", "203.0.113.7"],
        ["203.0.113.7, 10.1.2.3", "203.0.113.7"],
        ["10.1.2.3, 127.0.0.1", "10.1.2.3"],
        [undefined, "127.0.0.1"],
        // A port some proxies add is taken off; a hop that is no address leaves the client unknown.
        ["203.0.113.5:8080", "203.0.113.5"],
        ["[2001:db8::1]:443, 10.1.2.3", "2001:db8::1"],
        ["garbage", null],
        ["203.0.113.7, not-an-ip, 10.1.2.3", null],
      ];
      for (const [xff, expected] of cases) {
        const res = await trusting.request("/v1/chat/completions", {
          method: "POST",
          headers: { ...bearer(SECRETS.alice), ...(xff === undefined ? {} : { "x-forwarded-for": xff }) },
          body: BODY,
        });
        const record = (await trusting.records()).find((r) => r.id === res.headers["x-request-id"]);
        expect(record?.ip, String(xff)).toBe(expected);
      }
      expect(leaksOf(trusting)).toEqual([]);
    } finally {
      await trusting.close();
    }
  });

  it("/readyz answers 503 while draining, an open stream finishes, then the gateway stops", async () => {
    const draining = await startSecGateway({ sharedMock: g.mock });
    // An open stream keeps the drain going (~1.5 s of chunks).
    const stream = draining.request("/v1/chat/completions", {
      method: "POST",
      headers: bearer(SECRETS.alice),
      body: chatBody("tokens:15 chunks:15 delay:100", { stream: true }),
    });
    await until(() => g.mock.requests.some((r) => r.rawBody.includes("delay:100") && !r.completed), 5_000, "the stream to start");
    // A connection with a request half-sent is not idle, so the drain does not close it.
    const socket = connect({ host: draining.host, port: draining.port });
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write("GET /readyz HTTP/1.1\r\nHost: gw\r\n");
    const answer = new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (d: Buffer) => {
        text += d.toString("utf8");
        if (text.includes("\r\n\r\n") && text.includes("}")) resolve(text);
      });
      socket.on("close", () => resolve(text));
    });
    await sleep(50);
    const before = (await draining.request("/readyz")).status;
    expect(before).toBe(200);
    const stopped = draining.gateway.shutdown();
    await sleep(100);
    socket.write("Connection: close\r\n\r\n");
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 503/);
    expect(rawBody(text)).toContain("draining");
    const streamed = await stream;
    expect(streamed.status).toBe(200);
    expect(streamed.text).toContain("[DONE]");
    await stopped;
    socket.destroy();
    await draining.close();
  });

  it("no secret appeared in logs, audit records, error bodies or headers", () => {
    expect(leaksOf(g)).toEqual([]);
  });
});

/** Writes each part 100 ms after the one before; resolves with everything the gateway sent once it closes. */
function sendInParts(parts: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: g.host, port: g.port });
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
    });
    socket.on("close", () => resolve(text));
    socket.on("error", reject);
    socket.setTimeout(5_000, () => socket.destroy());
    parts.forEach((part, i) => {
      setTimeout(() => socket.write(part), i * 100);
    });
  });
}
