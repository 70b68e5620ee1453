import { describe, expect, it } from "vitest";
import { holds } from "./helpers.js";

type Row = [string, Record<string, unknown>, Record<string, unknown>, boolean];

const rows: Row[] = [
  // eq / ne
  ["eq string", { model: { eq: "gpt-4o" } }, { model: "gpt-4o" }, true],
  ["eq string differs", { model: { eq: "gpt-4o" } }, { model: "gpt-4o-mini" }, false],
  ["eq boolean", { stream: { eq: true } }, { stream: true }, true],
  ["eq boolean is strict", { stream: { eq: true } }, { stream: "true" }, false],
  ["eq number", { hour: { eq: 3 } }, { hour: 3 }, true],
  ["eq missing", { model: { eq: "gpt-4o" } }, {}, false],
  ["eq null", { model: { eq: "gpt-4o" } }, { model: null }, false],
  ["ne differs", { model: { ne: "gpt-4o" } }, { model: "x" }, true],
  ["ne equal", { model: { ne: "gpt-4o" } }, { model: "gpt-4o" }, false],
  ["ne missing holds", { model: { ne: "gpt-4o" } }, {}, true],
  ["ne null holds", { purpose: { ne: "support" } }, { purpose: null }, true],
  // in / not_in
  ["in", { model: { in: ["a", "b"] } }, { model: "b" }, true],
  ["in absent", { model: { in: ["a", "b"] } }, { model: "c" }, false],
  ["in missing", { model: { in: ["a"] } }, {}, false],
  ["in empty list", { model: { in: [] } }, { model: "a" }, false],
  ["in list fact, some element", { tools: { in: ["shell"] } }, { tools: ["read", "shell"] }, true],
  ["in list fact, no element", { tools: { in: ["shell"] } }, { tools: ["read"] }, false],
  ["in empty list fact", { pii_types: { in: ["email"] } }, { pii_types: [] }, false],
  ["in numbers", { weekday: { in: [6, 7] } }, { weekday: 7 }, true],
  ["in is type-strict", { weekday: { in: [6, 7] } }, { weekday: "7" }, false],
  ["not_in", { user_role: { not_in: ["admin"] } }, { user_role: "dev" }, true],
  ["not_in member", { user_role: { not_in: ["admin"] } }, { user_role: "admin" }, false],
  ["not_in missing holds", { purpose: { not_in: ["authorized_support"] } }, {}, true],
  ["not_in null holds", { purpose: { not_in: ["authorized_support"] } }, { purpose: null }, true],
  ["not_in list fact, none", { pii_types: { not_in: ["email"] } }, { pii_types: ["phone"] }, true],
  ["not_in list fact, one", { pii_types: { not_in: ["email"] } }, { pii_types: ["phone", "email"] }, false],
  // ordering
  ["gt", { daily_spend: { gt: 100 } }, { daily_spend: 100.01 }, true],
  ["gt equal", { daily_spend: { gt: 100 } }, { daily_spend: 100 }, false],
  ["gte equal", { daily_spend: { gte: 100 } }, { daily_spend: 100 }, true],
  ["lt", { hour: { lt: 6 } }, { hour: 5 }, true],
  ["lt equal", { hour: { lt: 6 } }, { hour: 6 }, false],
  ["lte equal", { hour: { lte: 6 } }, { hour: 6 }, true],
  ["gt on a string fact", { daily_spend: { gt: 1 } }, { daily_spend: "200" }, false],
  ["gt on NaN", { daily_spend: { gt: 1 } }, { daily_spend: Number.NaN }, false],
  ["gt missing", { daily_spend: { gt: 1 } }, {}, false],
  ["lt missing", { hour: { lt: 24 } }, {}, false],
  ["range with two operators", { hour: { gte: 9, lt: 17 } }, { hour: 12 }, true],
  ["range with two operators, outside", { hour: { gte: 9, lt: 17 } }, { hour: 17 }, false],
  // matches
  ["matches unanchored", { prompt_text: { matches: "prod" } }, { prompt_text: "deploy to production" }, true],
  ["matches anchored", { prompt_text: { matches: "^prod" } }, { prompt_text: "deploy to production" }, false],
  ["matches no match", { prompt_text: { matches: "secret" } }, { prompt_text: "hello" }, false],
  ["matches case flag", { prompt_text: { matches: "(?i)SECRET" } }, { prompt_text: "a secret" }, true],
  ["matches a number", { hour: { matches: "^1\\d$" } }, { hour: 13 }, true],
  ["matches a boolean", { stream: { matches: "^true$" } }, { stream: true }, true],
  ["matches a list, any element", { tools: { matches: "^shell_" } }, { tools: ["read", "shell_exec"] }, true],
  ["matches a list, none", { tools: { matches: "^shell_" } }, { tools: ["read"] }, false],
  ["matches an object", { "tool_args.x": { matches: "." } }, { tool_args: { x: { y: 1 } } }, false],
  ["matches missing", { prompt_text: { matches: "" } }, {}, false],
  // contains
  ["contains substring", { prompt_text: { contains: "drop table" } }, { prompt_text: "please drop table x" }, true],
  ["contains substring absent", { prompt_text: { contains: "drop" } }, { prompt_text: "select" }, false],
  ["contains element", { pii_types: { contains: "email" } }, { pii_types: ["phone", "email"] }, true],
  ["contains element absent", { pii_types: { contains: "email" } }, { pii_types: ["phone"] }, false],
  ["contains on a number fact", { "tool_args.n": { contains: "1" } }, { tool_args: { n: 1 } }, false],
  ["contains missing", { pii_types: { contains: "email" } }, {}, false],
  // exists
  ["exists true present", { session_id: { exists: true } }, { session_id: "s1" }, true],
  ["exists true missing", { session_id: { exists: true } }, {}, false],
  ["exists true null", { session_id: { exists: true } }, { session_id: null }, false],
  ["exists true falsy value", { stream: { exists: true } }, { stream: false }, true],
  ["exists false missing", { session_id: { exists: false } }, {}, true],
  ["exists false present", { session_id: { exists: false } }, { session_id: "" }, false],
  ["exists on a list with elements", { tools: { exists: true } }, { tools: ["a"] }, true],
  ["exists on an empty list: no tools declared", { tools: { exists: true } }, { tools: [] }, false],
  ["exists false on an empty list", { pii_types: { exists: false } }, { pii_types: [] }, true],
  // tool_args paths
  ["a number sent as text is compared as the number", { "tool_args.amount": { gt: 1000 } }, { tool_args: { amount: "5000" } }, true],
  ["a number sent as text equals the number", { "tool_args.n": { eq: 10 } }, { tool_args: { n: " 10 " } }, true],
  ["a number sent as text is in a list of numbers", { "tool_args.n": { in: [1, 2] } }, { tool_args: { n: "2" } }, true],
  ["a number sent as text is not one other", { "tool_args.n": { ne: 10 } }, { tool_args: { n: "10" } }, false],
  ["text that is not a whole number is not one", { "tool_args.amount": { gt: 1000 } }, { tool_args: { amount: "5000 USD" } }, false],
  ["empty text is no number", { "tool_args.amount": { lt: 1 } }, { tool_args: { amount: " " } }, false],
  ...["+5000", "05000", "5_000", "５０００", "0x1388", "Infinity", "5e3"].map(
    (amount): Row => [`${amount} is read as the number frameworks read`, { "tool_args.amount": { gt: 1000 } }, { tool_args: { amount } }, true],
  ),
  ["a typed attribute is not read from text", { input_tokens: { gt: 1 } }, { input_tokens: "5" }, false],
  ["tool_args path", { "tool_args.environment": { eq: "prod" } }, { tool_args: { environment: "prod" } }, true],
  [
    "tool_args nested path",
    { "tool_args.target.environment": { matches: "^prod" } },
    { tool_args: { target: { environment: "production" } } },
    true,
  ],
  ["tool_args array index", { "tool_args.hosts.1": { eq: "b" } }, { tool_args: { hosts: ["a", "b"] } }, true],
  ["tool_args missing key", { "tool_args.environment": { eq: "prod" } }, { tool_args: {} }, false],
  ["tool_args not an object", { "tool_args.environment": { eq: "prod" } }, { tool_args: "prod" }, false],
  ["tool_args absent", { "tool_args.environment": { exists: false } }, {}, true],
  ["tool_args prototype not read", { "tool_args.constructor": { exists: true } }, { tool_args: {} }, false],
  ["tool_args null leaf", { "tool_args.environment": { ne: "prod" } }, { tool_args: { environment: null } }, true],
  // several attributes: all must hold
  ["all attributes hold", { model: { eq: "a" }, user_role: { eq: "dev" } }, { model: "a", user_role: "dev" }, true],
  ["one attribute fails", { model: { eq: "a" }, user_role: { eq: "dev" } }, { model: "a", user_role: "ops" }, false],
  ["empty conditions", {}, {}, true],
];

describe("operators", () => {
  it.each(rows)("%s", (_name, conditions, facts, expected) => {
    expect(holds(conditions, facts)).toBe(expected);
  });

  it("matches in linear time on a catastrophic-backtracking pattern", () => {
    const text = `${"a".repeat(100_000)}!`;
    expect(holds({ prompt_text: { matches: "(a+)+$" } }, { prompt_text: text })).toBe(false);
    expect(holds({ prompt_text: { matches: "(a+)+!$" } }, { prompt_text: text })).toBe(true);
  });
});

const combinatorRows: Row[] = [
  ["any_of first", { any_of: [{ user_role: { eq: "contractor" } }, { team: { in: ["external"] } }] }, { user_role: "contractor" }, true],
  ["any_of second", { any_of: [{ user_role: { eq: "contractor" } }, { team: { in: ["external"] } }] }, { team: "external" }, true],
  ["any_of none", { any_of: [{ user_role: { eq: "contractor" } }, { team: { in: ["external"] } }] }, { team: "research" }, false],
  ["all_of both", { all_of: [{ hour: { gte: 9 } }, { hour: { lt: 17 } }] }, { hour: 10 }, true],
  ["all_of one fails", { all_of: [{ hour: { gte: 9 } }, { hour: { lt: 17 } }] }, { hour: 18 }, false],
  ["all_of empty", { all_of: [] }, {}, true],
  ["not negates", { not: { tool: { in: ["read_file"] } } }, { tool: "write_file" }, true],
  ["not of a holding condition", { not: { tool: { in: ["read_file"] } } }, { tool: "read_file" }, false],
  ["not of a missing attribute holds", { not: { tool: { in: ["read_file"] } } }, {}, true],
  ["not of empty map", { not: {} }, {}, false],
  [
    "contract example",
    {
      model: { in: ["gpt-4o"] },
      any_of: [{ user_role: { eq: "contractor" } }, { team: { in: ["external"] } }],
      not: { tool: { in: ["read_file"] } },
    },
    { model: "gpt-4o", team: "external" },
    true,
  ],
  [
    "contract example, model differs",
    { model: { in: ["gpt-4o"] }, any_of: [{ user_role: { eq: "contractor" } }] },
    { model: "gpt-4o-mini", user_role: "contractor" },
    false,
  ],
  [
    "nested combinators",
    { any_of: [{ all_of: [{ model: { eq: "a" } }, { not: { stream: { eq: true } } }] }, { hour: { eq: 3 } }] },
    { model: "a", stream: false },
    true,
  ],
];

describe("combinators", () => {
  it.each(combinatorRows)("%s", (_name, conditions, facts, expected) => {
    expect(holds(conditions, facts)).toBe(expected);
  });
});
