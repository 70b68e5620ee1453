import type { RequestSpec } from "../driver.js";
import type { GatewayVariant } from "./gateway-config.js";
import type { PhasePlan } from "./measure.js";
import { bigPromptSpec, chatSpec, streamSpec } from "./requests.js";

/** What sits between the driver and the mock. */
export type TargetKind = { kind: "direct" } | { kind: "bare"; mode: "pipe" | "web" } | { kind: "gateway"; variant: GatewayVariant; redis?: boolean };

export interface TargetDef {
  name: string;
  target: TargetKind;
  specs: { call: RequestSpec; stream: RequestSpec };
  plan: PhasePlan;
}

/** The headline target: 100 rules, rpm + tpm + daily budget + per-call cap (memory store), audit file, fsync interval. */
export const GOVERNED = "gw full";

export function phasePlans(quick: boolean): { standard: PhasePlan; variant: PhasePlan; big: PhasePlan } {
  // Each target first saturates until its rate settles (at most warmMaxMs), then warmupMs more, then the counted run.
  const closed = quick ? { workers: 64, durationMs: 2000, warmupMs: 500, warmMaxMs: 6000 } : { workers: 64, durationMs: 5000, warmupMs: 1000, warmMaxMs: 20_000 };
  const open = quick ? { rate: 500, count: 1500, warmup: 250 } : { rate: 500, count: 3000, warmup: 500 };
  const stream = quick ? { rate: 50, count: 100 } : { rate: 50, count: 250 };
  // A second, lighter fixed rate: the added latency where the gateway is not near saturation.
  const light = { rate: 200, count: quick ? 400 : 1200, warmup: 0 };
  return {
    standard: { closed, open, light, stream },
    variant: { closed, open, light: null, stream: null },
    big: { closed: { ...closed, workers: 16 }, open: { rate: 20, count: quick ? 60 : 200, warmup: 10 }, light: null, stream: null },
  };
}

const full = (name: string, extra: Partial<GatewayVariant> = {}): GatewayVariant => ({ name, policies: true, limits: true, fsync: "interval", ...extra });

export function targetDefs(quick: boolean): TargetDef[] {
  const plans = phasePlans(quick);
  const specs = { call: chatSpec(), stream: streamSpec() };
  const big = { call: bigPromptSpec(), stream: streamSpec() };
  const gw = (variant: GatewayVariant, plan: PhasePlan, extra: Partial<TargetDef> = {}): TargetDef => ({
    name: variant.name,
    target: { kind: "gateway", variant },
    specs,
    plan,
    ...extra,
  });
  const defs: TargetDef[] = [
    { name: "direct", target: { kind: "direct" }, specs, plan: plans.standard },
    { name: "bare", target: { kind: "bare", mode: "pipe" }, specs, plan: plans.standard },
    { name: "bare web", target: { kind: "bare", mode: "web" }, specs, plan: plans.standard },
    gw({ name: "gw no policies", policies: false, limits: false, fsync: "interval" }, plans.standard),
    gw({ name: "gw policies", policies: true, limits: false, fsync: "interval" }, plans.variant),
    gw(full(GOVERNED), plans.standard),
    { ...gw(full("gw full redis"), plans.variant), target: { kind: "gateway", variant: full("gw full redis"), redis: true } },
    gw(full("gw fsync always", { fsync: "always" }), plans.variant),
    gw(full("gw fsync never", { fsync: "never" }), plans.variant),
    { name: "direct 20k", target: { kind: "direct" }, specs: big, plan: plans.big },
    { name: "bare 20k", target: { kind: "bare", mode: "pipe" }, specs: big, plan: plans.big },
    gw(full("gw full 20k tokens", { tokenRule: true }), plans.big, { specs: big }),
  ];
  return defs;
}
