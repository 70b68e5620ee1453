import { describe, expect, test } from "vitest";
import { PII_TYPES } from "../../src/pii/index.js";
import { redactRequestBody } from "../../src/pipeline/redact-body.js";

const EMAIL = "bob@example.com";
const SSN = "123-45-6789";

describe("redactRequestBody", () => {
  test("masks an address cut across text parts: the text parts become one part holding the masked whole", () => {
    const image = { type: "image_url", image_url: { url: "x" } };
    const parts = [{ type: "text", text: "mail bob@exa" }, image, { type: "text", text: "mple.com now" }];
    const body: Record<string, unknown> = { model: "m", messages: [{ role: "user", content: parts }] };
    redactRequestBody(body, PII_TYPES);
    expect((body.messages as Array<{ content: unknown }>)[0]?.content).toEqual([{ type: "text", text: "mail [REDACTED:email] now" }, image]);
    // Parts each masked whole keep their shape.
    const whole = [{ type: "text", text: `to ${EMAIL}` }, { type: "text", text: " and more" }];
    const untouched: Record<string, unknown> = { model: "m", messages: [{ role: "user", content: whole }] };
    redactRequestBody(untouched, PII_TYPES);
    expect((untouched.messages as Array<{ content: unknown }>)[0]?.content).toEqual([{ type: "text", text: "to [REDACTED:email]" }, { type: "text", text: " and more" }]);
  });

  test("keeps what each part's masking found where the parts run together joined (an address at a part's end, a number the next part goes on)", () => {
    const parts = [
      { type: "text", text: `Customer email: ${EMAIL}` },
      { type: "text", text: `2) SSN: ${SSN}` },
      { type: "input_text", text: "Card on file 4111 1111 1111 1111" },
      { type: "input_text", text: "1 more" },
    ];
    const body: Record<string, unknown> = { model: "m", messages: [{ role: "user", content: parts }] };
    redactRequestBody(body, PII_TYPES);
    const sent = JSON.stringify(body);
    for (const secret of [EMAIL, SSN, "4111 1111 1111 1111"]) expect(sent).not.toContain(secret);
  });

  test("masks PII in arguments sent as an object, and keeps them an object", () => {
    const body: Record<string, unknown> = { model: "m", messages: [{ role: "assistant", tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: { mail: EMAIL, n: 1 } } }] }] };
    redactRequestBody(body, PII_TYPES);
    const call = (body.messages as Array<{ tool_calls: Array<{ function: { arguments: unknown } }> }>)[0]?.tool_calls[0];
    expect(call?.function.arguments).toEqual({ mail: "[REDACTED:email]", n: 1 });
  });

  test("masks PII inside an inline text file and sends it encoded as it came", () => {
    const file = { filename: "a.txt", file_data: `data:text/plain;base64,${Buffer.from(`mail ${EMAIL}`).toString("base64")}` };
    const body: Record<string, unknown> = { model: "m", messages: [{ role: "user", content: [{ type: "file", file }] }] };
    redactRequestBody(body, PII_TYPES);
    const sent = (body.messages as Array<{ content: Array<{ file: { filename: string; file_data: string } }> }>)[0]?.content[0]?.file;
    expect(sent?.filename).toBe("a.txt");
    expect(sent?.file_data.startsWith("data:text/plain;base64,")).toBe(true);
    expect(Buffer.from(sent?.file_data.slice("data:text/plain;base64,".length) ?? "", "base64").toString()).toBe("mail [REDACTED:email]");
    // The client's object is left as it was.
    expect(file.file_data).toContain("base64,bWFpbCBib2JAZXhhbXBsZS5jb20");
  });

  test("chat: contents, refusals and the arguments of earlier tool calls are masked; ids, names and roles kept", () => {
    const body: Record<string, unknown> = {
      model: "m",
      messages: [
        { role: "user", content: [{ type: "text", text: `mail ${EMAIL}` }, { type: "image_url", image_url: { url: "x" } }] },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "lookup", arguments: `{"email":"${EMAIL}"}` } }] },
        { role: "assistant", tool_calls: [{ id: "c2", type: "custom", custom: { name: "sh", input: `echo ${SSN}` } }] },
        { role: "assistant", content: null, function_call: { name: "legacy", arguments: `{"ssn":"${SSN}"}` }, refusal: `not ${EMAIL}` },
        { role: "tool", tool_call_id: "c1", content: `found ${EMAIL}` },
      ],
    };
    redactRequestBody(body, PII_TYPES);
    const text = JSON.stringify(body);
    expect(text).not.toContain(EMAIL);
    expect(text).not.toContain(SSN);
    const messages = body.messages as Array<Record<string, unknown>>;
    expect(messages[1]).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "c1", type: "function", function: { name: "lookup", arguments: '{"email":"[REDACTED:email]"}' } }],
    });
    expect(messages[2]).toEqual({ role: "assistant", tool_calls: [{ id: "c2", type: "custom", custom: { name: "sh", input: "echo [REDACTED:us_ssn]" } }] });
    expect(messages[3]?.function_call).toEqual({ name: "legacy", arguments: '{"ssn":"[REDACTED:us_ssn]"}' });
    expect(messages[3]?.refusal).toBe("not [REDACTED:email]");
    const [call] = messages[1]!.tool_calls as Array<{ function: { arguments: string } }>;
    expect(JSON.parse(call!.function.arguments)).toEqual({ email: "[REDACTED:email]" });
  });

  test("responses: input items' content, tool calls' arguments and input, and tool outputs are masked", () => {
    const body: Record<string, unknown> = {
      instructions: `reply to ${EMAIL}`,
      input: [
        `plain ${SSN}`,
        { role: "user", content: [{ type: "input_text", text: EMAIL }] },
        { type: "function_call", call_id: "c1", name: "f", arguments: `{"to":"${EMAIL}"}` },
        { type: "function_call_output", call_id: "c1", output: `sent to ${EMAIL}` },
        { type: "custom_tool_call", call_id: "c2", name: "sh", input: `echo ${SSN}` },
        { type: "reasoning", id: "r1" },
      ],
    };
    redactRequestBody(body, PII_TYPES);
    expect(JSON.stringify(body)).not.toMatch(/bob@example\.com|123-45-6789/);
    const input = body.input as unknown[];
    expect(input[2]).toEqual({ type: "function_call", call_id: "c1", name: "f", arguments: '{"to":"[REDACTED:email]"}' });
    expect(input[3]).toEqual({ type: "function_call_output", call_id: "c1", output: "sent to [REDACTED:email]" });
    expect(input[5]).toEqual({ type: "reasoning", id: "r1" });
  });

  test("arguments whose PII only the compatibility form shows stay JSON when masked (a fullwidth quote is not made a quote)", () => {
    const args = JSON.stringify({ note: "say ＂hi＂", email: "jane＠example．com" });
    const body: Record<string, unknown> = {
      model: "m",
      messages: [{ role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: args } }] }],
    };
    redactRequestBody(body, PII_TYPES);
    const sent = ((body.messages as Array<{ tool_calls: Array<{ function: { arguments: string } }> }>)[0]?.tool_calls[0]?.function.arguments) as string;
    expect(JSON.parse(sent)).toMatchObject({ email: "[REDACTED:email]" });
  });

  test("malformed members are left as they are", () => {
    const body: Record<string, unknown> = { messages: [null, 5, { role: "assistant", tool_calls: [null, { function: 3 }], function_call: "x" }], input: [null, 7] };
    redactRequestBody(body, PII_TYPES);
    expect(body).toEqual({ messages: [null, 5, { role: "assistant", tool_calls: [null, { function: 3 }], function_call: "x" }], input: [null, 7] });
  });

  test("arguments whose escapes hide PII are decoded, masked and written again; refusal parts are masked", () => {
    const hidden = '{"to":"bob\\u0040example.com","n":1}';
    const body: Record<string, unknown> = {
      messages: [
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "mail", arguments: hidden } }] },
        { role: "assistant", content: [{ type: "refusal", refusal: `no, ${EMAIL}` }] },
        { role: "assistant", tool_calls: [{ id: "c2", type: "function", function: { name: "f", arguments: '{"note":"caf\\u00e9"}' } }] },
      ],
    };
    redactRequestBody(body, PII_TYPES);
    const messages = body.messages as Array<{ tool_calls?: Array<{ function: { arguments: string } }>; content?: unknown }>;
    expect(JSON.parse(messages[0]!.tool_calls![0]!.function.arguments)).toEqual({ to: "[REDACTED:email]", n: 1 });
    expect(messages[1]!.content).toEqual([{ type: "refusal", refusal: "no, [REDACTED:email]" }]);
    // Nothing to mask: the arguments stay exactly as written, escapes and all.
    expect(messages[2]!.tool_calls![0]!.function.arguments).toBe('{"note":"caf\\u00e9"}');
  });

  test("masks every text the model reads and names the members it changed; the client's objects are left as they were", () => {
    const variables = { customer: EMAIL, note: { type: "input_text", text: `ssn ${SSN}` } };
    const shellOutput = { type: "shell_call_output", output: [{ stdout: EMAIL, stderr: "", outcome: { type: "exit", exit_code: 0 } }] };
    const body: Record<string, unknown> = {
      model: "gpt-4o-mini",
      input: [{ role: "user", content: "plain" }, shellOutput, { type: "local_shell_call", action: { type: "exec", command: ["mail", EMAIL] } }],
      prompt: { id: "pmpt_1", variables },
      tools: [{ type: "function", name: "f", description: `writes to ${EMAIL}` }],
      metadata: { owner: EMAIL },
    };
    const changed = redactRequestBody(body, PII_TYPES);
    expect(changed).toEqual(["input", "prompt", "tools"]);
    expect(JSON.stringify({ ...body, metadata: null })).not.toMatch(/bob@example\.com|123-45-6789/);
    // Not prompt text: left alone.
    expect(body.metadata).toEqual({ owner: EMAIL });
    expect(variables.customer).toBe(EMAIL);
    expect(shellOutput.output[0]?.stdout).toBe(EMAIL);
    expect((body.input as unknown[])[0]).toEqual({ role: "user", content: "plain" });
    expect(redactRequestBody({ messages: [{ role: "user", content: "nothing here" }] }, PII_TYPES)).toEqual([]);
  });
});
