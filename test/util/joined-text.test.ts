import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { JoinedText } from "../../src/util/joined-text.js";

describe("JoinedText", () => {
  test("reads as the plain concatenation of what was added, at any point", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.string({ maxLength: 6 }), { maxLength: 40 }), (batch, pieces) => {
        const text = new JoinedText(batch);
        let expected = "";
        for (const piece of pieces) {
          text.add(piece);
          expected += piece;
          if (piece.length % 3 === 0) expect(text.toString()).toBe(expected);
        }
        expect(text.toString()).toBe(expected);
      }),
    );
  });
});
