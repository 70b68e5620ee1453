import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { SimilarTexts } from "../../src/util/similar-texts.js";

describe("SimilarTexts", () => {
  test("reads back as the exact concatenation of what was added, at any point", () => {
    const piece = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(" 1 2 3\n", "\n", "9 9 9\nx", ""));
    fc.assert(
      fc.property(fc.array(fc.array(piece, { maxLength: 5 }).map((parts) => parts.join("")), { maxLength: 80 }), (texts) => {
        const kept = new SimilarTexts();
        let expected = "";
        texts.forEach((text, index) => {
          kept.add(text);
          expected += text;
          if (index % 7 === 0) expect(kept.toString()).toBe(expected);
        });
        expect(kept.toString()).toBe(expected);
      }),
    );
  });

  test("keeps SSE events of one stream exactly, whatever repeats between them", () => {
    const event = (content: string, finish: string | null): string =>
      `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", model: "gpt-4o-mini", choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
    const events = ["lorem ", "ipsum ", "ipsum ", "", "dolor sit amet, consectetur ", "x"].map((c) => event(c, null));
    events.push(event("", "stop"), "data: [DONE]\n\n");
    const kept = new SimilarTexts();
    for (const e of events) kept.add(e);
    expect(kept.toString()).toBe(events.join(""));
  });
});
