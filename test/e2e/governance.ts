import { APIError } from "openai";
import { expect } from "vitest";
import type { Approval, Stop } from "../../src/state/store.js";
import { ADMIN_TOKEN, type Harness } from "./harness.js";

/** Awaits a call that must fail with an OpenAI APIError of this status and code. */
export async function expectApiError(promise: Promise<unknown>, status: number, code: string): Promise<APIError> {
  let caught: unknown = null;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (caught === null) throw new Error(`expected ${status} ${code}, the call succeeded`);
  expect(caught).toBeInstanceOf(APIError);
  const apiError = caught as APIError;
  expect({ status: apiError.status, code: apiError.code, message: apiError.message }).toMatchObject({ status, code });
  return apiError;
}

/** Reads a stream to its end and returns the APIError it raised on the way (failing when it raised none). */
export async function streamApiError(stream: AsyncIterable<unknown>, code: string): Promise<APIError> {
  let caught: unknown = null;
  try {
    for await (const _ of stream);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(APIError);
  expect((caught as APIError).code).toBe(code);
  return caught as APIError;
}

/** Reads a Responses stream to its end: the types of the events it yielded, and what it raised (null if nothing). */
export async function responsesEvents(stream: AsyncIterable<{ type: string }>): Promise<{ types: string[]; raised: unknown }> {
  const types: string[] = [];
  try {
    for await (const event of stream) types.push(event.type);
  } catch (error) {
    return { types, raised: error };
  }
  return { types, raised: null };
}

/** The `error` object of an APIError's body (extra fields such as `approval_id` included). */
export function errorBody(error: APIError): Record<string, unknown> {
  return (error.error ?? {}) as Record<string, unknown>;
}

export interface RawResult {
  status: number;
  headers: Headers;
  text: string;
  json(): { error?: Record<string, unknown> } & Record<string, unknown>;
}

/** A plain HTTP call to the gateway, for byte-level comparisons (held answers) and headers. */
export async function raw(
  h: Harness,
  path: string,
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<RawResult> {
  const response = await fetch(`${h.gateway.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** Chat requests the mock upstream has received so far. */
export const chatCount = (h: Harness): number => h.mock.requests.filter((r) => r.path === "/v1/chat/completions").length;

export async function adminFetch(h: Harness, method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${h.gateway.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Whether the admin API's approval and stop routes exist yet (written concurrently). */
async function adminRoutesExist(h: Harness): Promise<boolean> {
  const response = await adminFetch(h, "GET", "/admin/approvals?status=pending", ADMIN_TOKEN);
  return response.status === 200;
}

/**
 * Decides an approval as an approver: over HTTP (`POST /admin/approvals/{id}/approve|deny`) when the
 * admin routes exist, else straight through the approval service with the actor the token stands for.
 * Resolves to the approval, or rejects with `{status, code}` like the API answers.
 */
export async function decide(
  h: Harness,
  id: string,
  verdict: "approve" | "deny",
  actor: { token: string; name: string; role: string } = { token: ADMIN_TOKEN, name: "admin", role: "admin" },
): Promise<{ status: number; code: string | null }> {
  if (await adminRoutesExist(h)) {
    const response = await adminFetch(h, "POST", `/admin/approvals/${id}/${verdict}`, actor.token, { comment: "e2e" });
    const body = (await response.json()) as { error?: { code?: string } };
    return { status: response.status, code: body.error?.code ?? null };
  }
  try {
    await h.gateway.services.approvals.decide(id, { name: actor.name, role: actor.role }, verdict === "approve" ? "approved" : "denied", "e2e");
    return { status: 200, code: null };
  } catch (error) {
    const e = error as { status?: number; code?: string };
    return { status: e.status ?? 500, code: e.code ?? null };
  }
}

export async function getApproval(h: Harness, id: string): Promise<Approval | null> {
  return h.gateway.services.store.getApproval(id);
}

/** Emergency stop of a key (the seed's `stop_token`), over HTTP when the route exists. */
export async function stopKey(h: Harness, keyId: string, reason: string): Promise<void> {
  if (await adminRoutesExist(h)) {
    const response = await adminFetch(h, "POST", "/admin/stop", ADMIN_TOKEN, { key_id: keyId, reason });
    expect(response.status).toBeLessThan(300);
    return;
  }
  const stop: Stop = { kind: "key_id", value: keyId, reason, by: "admin", at: new Date().toISOString() };
  await h.gateway.services.store.putStop(stop);
  h.gateway.services.shared.setStops(await h.gateway.services.store.listStops());
  h.gateway.services.streams.halt(h.gateway.services.shared.listStops());
}

export async function liftKey(h: Harness, keyId: string): Promise<void> {
  if (await adminRoutesExist(h)) {
    const response = await adminFetch(h, "POST", "/admin/stop/lift", ADMIN_TOKEN, { key_id: keyId });
    expect(response.status).toBeLessThan(300);
    return;
  }
  await h.gateway.services.store.deleteStop("key_id", keyId);
  h.gateway.services.shared.setStops(await h.gateway.services.store.listStops());
}

/** Parses an SSE body into its `data:` payloads and comment lines. */
export function sseEvents(text: string): { data: string[]; comments: string[] } {
  const data: string[] = [];
  const comments: string[] = [];
  for (const block of text.split(/\n\n/)) {
    for (const line of block.split("\n")) {
      if (line.startsWith("data: ")) data.push(line.slice(6));
      else if (line.startsWith(":")) comments.push(line);
    }
  }
  return { data, comments };
}
