import { describe, expect, it } from "vitest";
import { lazyPrompt, PII_TYPES } from "../../src/pii/index.js";
import { RequestBody } from "../../src/pipeline/request-body.js";

describe("RequestBody", () => {
  const bytes = Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}');

  it("hands out the parsed body the stages edit until it is released", () => {
    const parsed = JSON.parse(bytes.toString()) as Record<string, unknown>;
    const request = new RequestBody(parsed, bytes);
    request.body.model = "upstream-m";
    expect(request.body).toBe(parsed);
    expect(request.body.model).toBe("upstream-m");
  });

  it("once released, reads the body as the client sent it from its bytes, parsed once", () => {
    const request = new RequestBody({ model: "edited" }, bytes);
    request.release();
    const again = request.body;
    expect(again).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(request.body).toBe(again);
  });

  it("gives a prompt fact first read after the release the body the client sent, not an empty or edited one", () => {
    const sent = Buffer.from('{"model":"m","messages":[{"role":"user","content":"mail bob@example.com"}]}');
    const request = new RequestBody(JSON.parse(sent.toString()) as Record<string, unknown>, sent);
    const prompt = lazyPrompt(() => request.body, PII_TYPES);
    request.body.messages = [{ role: "user", content: "[REDACTED:email]" }];
    request.release();
    expect(prompt.pii().types).toEqual(["email"]);
    expect(prompt.text()).toBe("mail bob@example.com");
  });

  it("answers asSent with the parsed body until the edits begin, then with the bytes parsed again", () => {
    const parsed = JSON.parse(bytes.toString()) as Record<string, unknown>;
    const request = new RequestBody(parsed, bytes);
    expect(request.asSent).toBe(parsed);
    request.beginEdits();
    request.body.tools = [];
    request.body.model = "upstream-m";
    expect(request.asSent).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(request.body).toBe(parsed);
  });
});
