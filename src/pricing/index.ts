export { costMicros, inputCostMicros, maxOutputTokensWithin, worstCaseMicros } from "./cost.js";
export { microsToUsd, usdToMicros } from "./money.js";
export { compileModelPrices, compilePriceTable, isPriced, type ModelPrices, type PriceTable } from "./prices.js";
export { type Usage, usageFromOpenAI } from "./usage.js";
