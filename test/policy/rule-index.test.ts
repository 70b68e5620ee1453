import { describe, expect, test } from "vitest";
import { candidateRules, guardOf, indexRules } from "../../src/policy/rule-index.js";
import { factsOf } from "./helpers.js";

describe("rule index", () => {
  test("a guard is what eq and in allow together; other operators leave it open", () => {
    expect(guardOf({ team: { eq: "a" } }, "team")).toEqual(new Set(["a"]));
    expect(guardOf({ team: { in: ["a", "b"] } }, "team")).toEqual(new Set(["a", "b"]));
    expect(guardOf({ team: { eq: "a", in: ["b"] } }, "team")).toEqual(new Set());
    expect(guardOf({ team: { ne: "a" } }, "team")).toBeNull();
    expect(guardOf({ any_of: [{ team: { eq: "a" } }] }, "team")).toBeNull();
    expect(guardOf({ user: { eq: "a" } }, "team")).toBeNull();
  });

  test("files rules under the attribute guarding most of them and keeps config order", () => {
    const rules = [
      { rule: "r0", conditions: { team: { eq: "red" } } },
      { rule: "r1", conditions: { model: { eq: "gpt-4o" } } },
      { rule: "r2", conditions: { team: { in: ["red", "blue"] } } },
      { rule: "r3", conditions: { team: { eq: "blue" }, user: { eq: "bo" } } },
    ];
    const index = indexRules(rules);
    expect(index.attribute).toBe("team");
    expect(candidateRules(index, factsOf({ team: "red" }))).toEqual(["r0", "r1", "r2"]);
    expect(candidateRules(index, factsOf({ team: "blue" }))).toEqual(["r1", "r2", "r3"]);
    expect(candidateRules(index, factsOf({ team: "green" }))).toEqual(["r1"]);
    expect(candidateRules(index, factsOf({}))).toEqual(["r1"]);
    // A list can satisfy `in`: walked in full.
    expect(candidateRules(index, factsOf({ team: ["blue"] }))).toEqual(["r0", "r1", "r2", "r3"]);
  });

  test("does not index when no attribute guards two rules", () => {
    const index = indexRules([
      { rule: "r0", conditions: { team: { eq: "red" } } },
      { rule: "r1", conditions: { estimated_cost: { gt: 1 } } },
    ]);
    expect(index.attribute).toBeNull();
    expect(candidateRules(index, factsOf({ team: "blue" }))).toEqual(["r0", "r1"]);
  });
});
