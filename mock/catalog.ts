import type { ServerResponse } from "node:http";
import { sendError, sendJson } from "./errors.js";

// Read-only endpoints the gateway passes through without governance logic.

const CREATED = 1_700_000_000;

export const MODEL_IDS = [
  "gpt-4o",
  "gpt-4o-mini",
  "gpt-4.1",
  "gpt-4.1-mini",
  "o3-mini",
  "text-embedding-3-small",
  "text-embedding-3-large",
] as const;

function model(id: string) {
  return { id, object: "model", created: CREATED, owned_by: "system" };
}

export function listModels(res: ServerResponse): void {
  sendJson(res, 200, { object: "list", data: MODEL_IDS.map(model) });
}

export function getModel(res: ServerResponse, id: string): void {
  if ((MODEL_IDS as readonly string[]).includes(id)) {
    sendJson(res, 200, model(id));
    return;
  }
  sendError(res, 404, { message: `The model '${id}' does not exist`, param: "model" });
}

export function listFiles(res: ServerResponse): void {
  sendJson(res, 200, {
    object: "list",
    data: [
      {
        id: "file-mock1",
        object: "file",
        bytes: 1024,
        created_at: CREATED,
        filename: "training.jsonl",
        purpose: "fine-tune",
        status: "processed",
        expires_at: null,
        status_details: null,
      },
    ],
    first_id: "file-mock1",
    last_id: "file-mock1",
    has_more: false,
  });
}
