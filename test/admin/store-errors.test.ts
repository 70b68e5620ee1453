import { describe, expect, it } from "vitest";
import { fromStore } from "../../src/approvals/service.js";
import { GatewayError } from "../../src/http/errors.js";

describe("fromStore", () => {
  it("answers a store that cannot be reached 503 store_unavailable", async () => {
    const error = await fromStore(Promise.reject(new Error("Stream isn't writeable"))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 503, code: "store_unavailable", message: "the state store is unavailable; try again shortly" });
  });

  it("tells the caller a write that timed out may have been made", async () => {
    const error = await fromStore(Promise.reject(new Error("Command timed out"))).catch((e: unknown) => e);
    expect((error as GatewayError).message).toContain("may have been made: read it back before retrying");
  });

  it("passes the gateway's own errors through", async () => {
    const own = new GatewayError(404, "not_found", "no approval");
    expect(await fromStore(Promise.reject(own)).catch((e: unknown) => e)).toBe(own);
  });
});
