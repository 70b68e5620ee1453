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
  limited: false,
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

describe("estimateCall of a Responses call continuing stored context", () => {
  const uncapped: LimitPlan = { ...plan(0, true), perCallCapMicros: null };
  it("reserves the model's context window as input, the stored part being unseen by the gateway", () => {
    const model = modelSchema.parse({ upstream: "openai", input_per_1m: 1, output_per_1m: 2, context_window: 128_000 });
    const prices = compileModelPrices(model);
    const plain = estimateCall("responses", { model: "m", input: "hi", max_output_tokens: 100 }, model, prices, uncapped, true);
    expect(plain.inputTokens).toBeLessThan(100);
    for (const continued of [{ previous_response_id: "resp_1" }, { previous_response_id: 5 }, { conversation: "conv_1" }, { conversation: { id: "conv_1" } }, { prompt: { id: "pmpt_1" } }]) {
      const estimate = estimateCall("responses", { model: "m", input: "hi", max_output_tokens: 100, ...continued }, model, prices, uncapped, true);
      expect(estimate.inputTokens).toBe(128_000);
      expect(estimate.worstMicros).toBe(128_000 + 200);
    }
    // Without a window configured, only the input the request carries.
    const unknown = modelSchema.parse({ upstream: "openai", input_per_1m: 1, output_per_1m: 2 });
    expect(estimateCall("responses", { model: "m", input: "hi", previous_response_id: "resp_1" }, unknown, compileModelPrices(unknown), uncapped, true).inputTokens).toBeLessThan(100);
  });
});
