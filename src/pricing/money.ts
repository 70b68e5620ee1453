/** Money inside the gateway is integer micro-USD; USD as a number exists only at the edges. */
export function usdToMicros(usd: number): number {
  return Math.round(usd * 1e6);
}

export function microsToUsd(micros: number): number {
  return micros / 1e6;
}
