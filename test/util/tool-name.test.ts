import { describe, expect, it } from "vitest";
import { looseToolName, withLooseNames } from "../../src/util/tool-name.js";

describe("looseToolName", () => {
  it("reads a tool name as a lenient framework would: NFKC, no invisible characters or surrounding space, lower case", () => {
    for (const name of ["Execute_Code", "execute\u200b_code", " execute_code ", "ｅｘｅｃｕｔｅ_code"]) expect(looseToolName(name), name).toBe("execute_code");
  });

  it("adds each loose form that differs, once", () => {
    expect(withLooseNames(["search"])).toEqual(["search"]);
    expect(withLooseNames(["Search", "SEARCH", "web_search"])).toEqual(["Search", "SEARCH", "web_search", "search"]);
  });
});
