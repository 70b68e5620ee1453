import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "../../mock/upstream.js";

let mock: MockUpstream;
let client: OpenAI;

beforeAll(async () => {
  mock = await startMockUpstream();
  client = new OpenAI({ baseURL: mock.url, apiKey: "x", maxRetries: 0 });
});
afterAll(() => mock.close());

describe("embeddings", () => {
  it("SDK default asks for base64 and decodes to 8 floats, matching the float encoding", async () => {
    const res = await client.embeddings.create({ model: "text-embedding-3-small", input: ["alpha", "beta"] });
    expect(mock.requests.at(-1)?.body).toMatchObject({ encoding_format: "base64" });
    expect(res.data).toHaveLength(2);
    const vec = res.data[0]?.embedding ?? [];
    expect(vec).toHaveLength(8);
    expect(Math.hypot(...vec)).toBeCloseTo(1, 5);
    expect(res.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });

    const floats = await client.embeddings.create({ model: "m", input: "alpha", encoding_format: "float" });
    expect(floats.data[0]?.embedding).toEqual(Array.from(vec));
  });
});

describe("catalog and passthrough", () => {
  it("lists and retrieves models", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain("gpt-4o");
    expect((await client.models.retrieve("gpt-4o-mini")).object).toBe("model");
    await expect(client.models.retrieve("nope")).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("lists files", async () => {
    const files = await client.files.list();
    expect(files.data[0]?.object).toBe("file");
  });

  it("unknown paths get OpenAI's 404 body", async () => {
    const res = await fetch(`${mock.url}/nothing`, { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: "Invalid URL (POST /v1/nothing)", type: "invalid_request_error", param: null, code: null },
    });
  });
});
