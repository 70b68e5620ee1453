import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { spliceEdited } from "../../src/openai/json-splice.js";

const splice = (text: string, edit: (body: Record<string, unknown>) => void, keys: string[]): string => {
  const body = JSON.parse(text) as Record<string, unknown>;
  edit(body);
  return spliceEdited(text, body, new Set(keys));
};

describe("spliceEdited", () => {
  it("keeps the members it did not edit as the client wrote them, integers past 2^53 included", () => {
    const text = '{ "model" : "gpt-4o",\n "seed":9007199254740993, "temperature":1.0, "x":{"id":12345678901234567890,"s":"\\u00e9\\"}"}, "max_tokens": 900 }';
    const out = splice(text, (b) => { b.max_tokens = 300; }, ["max_tokens", "max_completion_tokens"]);
    expect(out).toBe('{"model" : "gpt-4o","seed":9007199254740993,"temperature":1.0,"x":{"id":12345678901234567890,"s":"\\u00e9\\"}"},"max_tokens":300}');
  });

  it("appends added members, drops deleted ones and writes a key sent twice once, with its edited value", () => {
    const text = '{"tools":[1],"stream":true,"tool_choice":"auto","tools":[2,3]}';
    const out = splice(text, (b) => { b.tools = [3]; delete b.tool_choice; b.stream_options = { include_usage: true }; }, ["tools", "tool_choice", "stream_options"]);
    expect(out).toBe('{"tools":[3],"stream":true,"stream_options":{"include_usage":true}}');
  });

  it("finds members after strings holding brackets, quotes and backslashes, and after an escaped key", () => {
    const text = '{"a":"]}\\\\","\\u006dodel":"m","b":[{"c":"\\"[{"}],"d":null}';
    expect(splice(text, (b) => { b.model = "up"; }, ["model"])).toBe('{"a":"]}\\\\","model":"up","b":[{"c":"\\"[{"}],"d":null}');
    expect(splice("{}", (b) => { b.model = "up"; }, ["model"])).toBe('{"model":"up"}');
  });

  it("parses to the edited body, whatever the object and the edits", () => {
    const key = fc.constantFrom("model", "tools", "max_tokens", "stream_options", "messages", "x", "é\"\\");
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue()), fc.dictionary(key, fc.option(fc.jsonValue(), { nil: undefined })), fc.boolean(), (object, edits, spaced) => {
        const text = JSON.stringify(object, null, spaced ? 2 : undefined);
        const body = JSON.parse(text) as Record<string, unknown>;
        for (const [k, v] of Object.entries(edits)) {
          if (v === undefined) delete body[k];
          else body[k] = v;
        }
        const out = spliceEdited(text, body, new Set(Object.keys(edits)));
        expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(body)));
      }),
      { numRuns: 500 },
    );
  });
});
