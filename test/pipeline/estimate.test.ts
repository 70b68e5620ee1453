import { describe, expect, it } from "vitest";
import { modelSchema } from "../../src/config/schema.js";
import { GatewayError } from "../../src/http/errors.js";
import type { LimitPlan } from "../../src/limits/plan.js";
import { estimateCall } from "../../src/pipeline/estimate.js";
import { compileModelPrices } from "../../src/pricing/prices.js";

const plan = (capUsd: number, clamp: boolean): LimitPlan => ({
  levels: [],
  perCallCapMicros: Math.round(capUsd * 1_000_000),
  clamp,
  minOutputTokens: 16,
  needsPrices: true,
  needsTokens: true,
  sessionTtlMs: 0,
});

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("estimateCall at the per-call cap", () => {
  it("refuses an embeddings input over the cap by its input, naming `input`, in either cap mode", () => {
    const model = modelSchema.parse({ upstream: "openai", kind: "embedding", input_per_1m: 100 });
    const body = { model: "e", input: "word ".repeat(200) };
    for (const clamp of [true, false]) {
      const error = refusal(() => estimateCall("embeddings", body, model, compileModelPrices(model), plan(0.001, clamp), true));
      expect(error.code).toBe("cost_cap_exceeded");
      expect(error.toBody().error.param).toBe("input");
      expect(error.message).toMatch(/^estimated cost \$0\.0\d+ of the input \(\d+ tokens\) exceeds the per-call cap of \$0\.001/);
      expect(error.message).not.toContain("output");
    }
  });
});
