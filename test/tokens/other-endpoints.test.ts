import { describe, expect, test } from "vitest";
import { countEmbeddingsInput, countResponsesInput } from "../../src/tokens/index.js";

describe("countResponsesInput", () => {
  test("a string input counts as one user message", () => {
    expect(countResponsesInput({ input: "hello world" }, "o200k_base")).toBe(3 + 2 + 3);
  });

  test("instructions count as a system message", () => {
    expect(countResponsesInput({ instructions: "You are helpful.", input: "hello world" }, "o200k_base")).toBe(
      3 + 4 + 3 + 2 + 3,
    );
  });

  test("items: messages with parts, function calls and their outputs", () => {
    const body = {
      input: [
        { role: "user", content: [{ type: "input_text", text: "hello world" }, { type: "input_image", image_url: "x" }] },
        { type: "function_call", call_id: "c1", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "c1", output: "sunny" },
      ],
    };
    expect(countResponsesInput(body, "o200k_base")).toBe(3 + 1 + 2 + 85 + (3 + 2 + 5) + (3 + 2) + 3);
  });
});

describe("countEmbeddingsInput", () => {
  test.each([
    [{ input: "hello world" }, 2],
    [{ input: ["hello world", "hello world"] }, 4],
    [{ input: [1, 2, 3] }, 3],
    [{ input: [[1, 2], [3, 4, 5]] }, 5],
    [{ input: ["hello world", [1, 2], 7, null] }, 5],
  ])("%j is %i tokens", (body, tokens) => {
    expect(countEmbeddingsInput(body, "cl100k_base")).toBe(tokens);
  });
});
