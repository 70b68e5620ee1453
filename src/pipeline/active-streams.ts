import { GatewayError } from "../http/errors.js";
import type { Stop } from "../state/store.js";
import type { CallAbort } from "./call-abort.js";

interface OpenCall {
  keyId: string;
  user: string;
  team: string | null;
  controller: CallAbort;
}

/** The calls in flight, so an emergency stop can end a principal's open streams at once. */
export class ActiveStreams {
  private readonly open = new Set<OpenCall>();

  /** Tracks a call until `done`; a stop covering it aborts `controller` with an `emergency_stop` error. */
  register(keyId: string, user: string, team: string | null, controller: CallAbort): () => void {
    const call: OpenCall = { keyId, user, team, controller };
    this.open.add(call);
    return () => this.open.delete(call);
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every open call the stops cover, with an `emergency_stop` error. */
  halt(stops: Stop[]): number {
    let ended = 0;
    for (const call of this.open) {
      const stop = stops.find(
        (s) =>
          (s.kind === "key_id" && s.value === call.keyId) ||
          (s.kind === "user" && s.value === call.user) ||
          (s.kind === "team" && s.value === call.team),
      );
      if (stop === undefined) continue;
      call.controller.abort(stopError(stop));
      this.open.delete(call);
      ended++;
    }
    return ended;
  }

  /**
   * Ends every open call whose key no longer serves (revoked, disabled or expired since the call
   * began) with an `invalid_api_key` error: a revoke is at once, for what is running too.
   */
  endUnserved(serves: (keyId: string) => boolean): number {
    let ended = 0;
    for (const call of this.open) {
      if (serves(call.keyId)) continue;
      call.controller.abort(new GatewayError(401, "invalid_api_key", `key \`${call.keyId}\` was revoked, disabled or expired during the call; it was ended`));
      this.open.delete(call);
      ended++;
    }
    return ended;
  }

  /** Ends every open call with `error` (a drain past its deadline). */
  endAll(error: GatewayError): number {
    const ended = this.open.size;
    for (const call of this.open) call.controller.abort(error);
    this.open.clear();
    return ended;
  }
}

export function stopError(stop: Stop): GatewayError {
  const who = stop.kind === "key_id" ? "key" : stop.kind;
  return new GatewayError(403, "emergency_stop", `${who} \`${stop.value}\` is halted by an emergency stop: ${stop.reason}`);
}
