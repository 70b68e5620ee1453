import { describe, expect, test } from "vitest";
import { usageFromOpenAI } from "../../src/pricing/index.js";

describe("usageFromOpenAI", () => {
  test("chat completions", () => {
    const usage = {
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 10 },
    };
    expect(usageFromOpenAI(usage)).toEqual({ input_tokens: 120, output_tokens: 30, cached_input_tokens: 64 });
    expect(usageFromOpenAI({ id: "chatcmpl-1", choices: [], usage })).toEqual({
      input_tokens: 120,
      output_tokens: 30,
      cached_input_tokens: 64,
    });
  });

  test("responses", () => {
    const usage = { input_tokens: 50, output_tokens: 7, total_tokens: 57, input_tokens_details: { cached_tokens: 0 } };
    expect(usageFromOpenAI(usage)).toEqual({ input_tokens: 50, output_tokens: 7, cached_input_tokens: 0 });
  });

  test("embeddings have input only", () => {
    expect(usageFromOpenAI({ prompt_tokens: 8, total_tokens: 8 })).toEqual({
      input_tokens: 8,
      output_tokens: 0,
      cached_input_tokens: 0,
    });
  });

  test("no usage, or garbage, is null", () => {
    expect(usageFromOpenAI(null)).toBeNull();
    expect(usageFromOpenAI({ usage: null, choices: [] })).toBeNull();
    expect(usageFromOpenAI({ prompt_tokens: "12" })).toBeNull();
    expect(usageFromOpenAI([1, 2])).toBeNull();
  });

  test("bad details are ignored and cached never exceeds input", () => {
    expect(usageFromOpenAI({ prompt_tokens: 5, completion_tokens: -1, prompt_tokens_details: { cached_tokens: 9 } })).toEqual({
      input_tokens: 5,
      output_tokens: 0,
      cached_input_tokens: 5,
    });
    expect(usageFromOpenAI({ input_tokens: 5, output_tokens: 1.5, input_tokens_details: "x" })).toEqual({
      input_tokens: 5,
      output_tokens: 0,
      cached_input_tokens: 0,
    });
  });
});
