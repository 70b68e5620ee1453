import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { countChatInput } from "../../src/tokens/index.js";
import { TextCache } from "../../src/util/text-cache.js";

describe("TextCache", () => {
  test("counts a string once and answers repeats from the cache", () => {
    const cache = new TextCache(10, 1000);
    let counted = 0;
    const count = (text: string): number => {
      counted++;
      return text.length;
    };
    expect(cache.valueOf("abc", count)).toBe(3);
    expect(cache.valueOf("abc", count)).toBe(3);
    expect(cache.valueOf("abcd", count)).toBe(4);
    expect(counted).toBe(2);
  });

  test("keeps at most maxEntries, dropping the oldest first", () => {
    const cache = new TextCache(2, 1000);
    const seen: string[] = [];
    const count = (text: string): number => {
      seen.push(text);
      return 1;
    };
    cache.valueOf("a", count);
    cache.valueOf("b", count);
    cache.valueOf("c", count);
    expect(cache.size).toBe(2);
    cache.valueOf("c", count);
    cache.valueOf("b", count);
    cache.valueOf("a", count);
    expect(seen).toEqual(["a", "b", "c", "a"]);
  });

  test("keeps at most maxChars of text and never keeps a string longer than half of that", () => {
    const cache = new TextCache(100, 10);
    const count = (text: string): number => text.length;
    cache.valueOf("x".repeat(4), count);
    cache.valueOf("y".repeat(4), count);
    cache.valueOf("z".repeat(4), count);
    expect(cache.keptChars).toBe(8);
    expect(cache.size).toBe(2);
    expect(cache.valueOf("w".repeat(6), count)).toBe(6);
    expect(cache.keptChars).toBe(8);
    expect(cache.size).toBe(2);
  });

  test("a string in use keeps its place while newer ones push the unused out", () => {
    const cache = new TextCache(4, 1000);
    const seen: string[] = [];
    const count = (text: string): number => {
      seen.push(text);
      return text.length;
    };
    cache.valueOf("hot", count);
    for (const cold of ["a", "b", "c", "d", "e", "f", "g"]) {
      cache.valueOf(cold, count);
      cache.valueOf("hot", count);
    }
    cache.valueOf("a", count);
    expect(seen).toEqual(["hot", "a", "b", "c", "d", "e", "f", "g", "a"]);
  });

  test("stays within both bounds and answers every string right, whatever comes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 2, max: 40 }), fc.array(fc.string({ maxLength: 12 }), { maxLength: 200 }), (entries, chars, texts) => {
        const cache = new TextCache<number>(entries, chars);
        for (const text of texts) {
          expect(cache.valueOf(text, (t) => t.length * 7 + 1)).toBe(text.length * 7 + 1);
          expect(cache.size).toBeLessThanOrEqual(entries);
          expect(cache.keptChars).toBeLessThanOrEqual(chars);
        }
      }),
    );
  });
});

describe("token counts through the cache", () => {
  test("a conversation counts the same on its first call and when resent with a new turn", () => {
    const history = [
      { role: "system", content: "You are a careful analyst. Cite the section you rely on, and say so when it is missing." },
      { role: "user", content: `Question number ${Math.random()}: what changed in the third quarter, in detail?` },
    ];
    const first = countChatInput({ model: "gpt-4o", messages: history }, "o200k_base");
    const again = countChatInput({ model: "gpt-4o", messages: structuredClone(history) }, "o200k_base");
    expect(again).toBe(first);
    const turn = { role: "assistant", content: "Revenue fell by four percent while costs stayed flat over the quarter." };
    const longer = countChatInput({ model: "gpt-4o", messages: [...history, turn] }, "o200k_base");
    const turnAlone = countChatInput({ model: "gpt-4o", messages: [turn] }, "o200k_base");
    // Each message adds its own tokens plus the per-message overhead; reply priming (3) is counted once.
    expect(longer).toBe(first + turnAlone - 3);
  });
});
