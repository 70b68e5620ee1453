import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/keys.js";
import { CallFacts, type CallFactsInput } from "../../src/pipeline/facts.js";

const principal = { keyId: "key_1", subject: { user: "ana", role: "developer", team: "research" } } as unknown as Principal;

function input(lazy: CallFactsInput["lazy"] = {}): CallFactsInput {
  return {
    principal,
    org: "acme",
    action: "chat.completions",
    model: "gpt-4o-mini",
    stream: true,
    tools: ["search"],
    sessionId: null,
    ip: "127.0.0.1",
    userAgent: null,
    // Sunday 2026-11-29, 13:00 UTC
    now: Date.UTC(2026, 10, 29, 13),
    lazy,
  };
}

describe("CallFacts", () => {
  it("holds the eager facts of the call", () => {
    const facts = new CallFacts(input());
    expect(facts.get("key_id")).toBe("key_1");
    expect(facts.get("team")).toBe("research");
    expect(facts.get("model")).toBe("gpt-4o-mini");
    expect(facts.get("tools")).toEqual(["search"]);
    expect(facts.get("hour")).toBe(13);
    expect(facts.get("weekday")).toBe(7);
    expect(facts.get("purpose")).toBeUndefined();
  });

  it("computes a lazy fact once, on its first read", () => {
    let calls = 0;
    const facts = new CallFacts(input({ input_tokens: () => ++calls * 100 }));
    expect(calls).toBe(0);
    expect(facts.get("input_tokens")).toBe(100);
    expect(facts.get("input_tokens")).toBe(100);
    expect(calls).toBe(1);
  });

  it("keeps a fact set to undefined as known: its thunk is not run", () => {
    let calls = 0;
    const facts = new CallFacts(input({ daily_spend: () => ++calls }));
    facts.set("daily_spend", undefined);
    expect(facts.get("daily_spend")).toBeUndefined();
    expect(calls).toBe(0);
  });

  it("gives a tool evaluation its own action, tool and arguments over the call's facts", () => {
    const facts = new CallFacts(input({ input_tokens: () => 42 }));
    const child = facts.forTool("tool.call", "deploy", '{"environment":"prod"}');
    expect(child.get("action")).toBe("tool.call");
    expect(child.get("tool")).toBe("deploy");
    expect(child.get("tool_args")).toEqual({ environment: "prod" });
    expect(child.get("tool_args_json")).toBe('{"environment":"prod"}');
    expect(child.get("team")).toBe("research");
    expect(child.get("input_tokens")).toBe(42);
    expect(facts.get("action")).toBe("chat.completions");
    expect(facts.get("tool")).toBeUndefined();
  });

  it("writes arguments that hide text behind escapes plainly after them in tool_args_json", () => {
    const facts = new CallFacts(input());
    const escaped = String.raw`{"target":"\u0070roduction-db","path":"a\/b"}`;
    const child = facts.forTool("tool.call", "deploy", escaped);
    expect(child.get("tool_args_json")).toBe(`${escaped}\n{"target":"production-db","path":"a/b"}`);
    expect(child.get("tool_args")).toEqual({ target: "production-db", path: "a/b" });
    // Escapes JSON needs (a quote) write back the same: nothing is added.
    const quoted = String.raw`{"say":"\"hi\""}`;
    expect(facts.forTool("tool.call", "say", quoted).get("tool_args_json")).toBe(quoted);
    const plain = '{"target":"production-db"}';
    expect(facts.forTool("tool.call", "deploy", plain).get("tool_args_json")).toBe(plain);
  });

  it("leaves unparsable tool arguments missing while their text stays readable", () => {
    const child = new CallFacts(input()).forTool("tool.call", "deploy", "{not json");
    expect(child.get("tool_args")).toBeUndefined();
    expect(child.get("tool_args_json")).toBe("{not json");
  });

  it("reads arguments that are almost JSON as an agent framework's repair would (trailing commas, single quotes)", () => {
    const facts = new CallFacts(input());
    for (const args of ['{"environment": "production",}', "{'environment': 'production'}", "{environment: 'production' /* ship it */}"]) {
      const child = facts.forTool("tool.call", "deploy", args);
      expect(child.get("tool_args")).toEqual({ environment: "production" });
      expect(child.get("tool_args_json")).toBe(args);
    }
  });

  it("reads arguments with raw line breaks inside strings, as Python's lenient json.loads (LangChain's) does", () => {
    const facts = new CallFacts(input());
    expect(facts.forTool("tool.call", "run", '{"cmd":"rm -rf /\n"}').get("tool_args")).toEqual({ cmd: "rm -rf /\n" });
    expect(facts.forTool("tool.call", "deploy", '{"environment":"production","note":"a\r\tb"}').get("tool_args")).toEqual({ environment: "production", note: "a\r\tb" });
    // Outside strings a line break is only white space; what nothing reads stays missing.
    expect(facts.forTool("tool.call", "run", '{\n"cmd": "ls"\n}').get("tool_args")).toEqual({ cmd: "ls" });
    expect(facts.forTool("tool.call", "run", '{"cmd": \n').get("tool_args")).toBeUndefined();
  });

  it("decodes arguments encoded twice (a JSON string holding the object), as frameworks do", () => {
    const child = new CallFacts(input()).forTool("tool.call", "pay", JSON.stringify(JSON.stringify({ amount: 5000 })));
    expect(child.get("tool_args")).toEqual({ amount: 5000 });
    expect(new CallFacts(input()).forTool("tool.call", "say", '"just text"').get("tool_args")).toBe("just text");
  });

  it("knows no attribute outside the contract's list", () => {
    const facts = new CallFacts(input());
    expect(facts.get("constructor")).toBeUndefined();
    expect(() => facts.set("nonsense", 1)).toThrow(/unknown fact/);
  });
});
