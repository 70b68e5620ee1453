/** Every refusal the gateway makes: a stable code, an HTTP status and OpenAI's error shape. */
export type ErrorCode =
  | "invalid_api_key"
  | "policy_denied"
  | "approval_required"
  | "approval_pending"
  | "approval_denied"
  | "approval_expired"
  | "approval_used"
  | "approval_invalid"
  | "approver_role_mismatch"
  | "not_found"
  | "approval_not_pending"
  | "key_not_runtime"
  | "key_exists"
  | "emergency_stop"
  | "model_not_found"
  | "model_not_priced"
  | "rate_limit_exceeded"
  | "budget_exceeded"
  | "cost_cap_exceeded"
  | "invalid_json"
  | "invalid_body"
  | "request_too_large"
  | "upstream_error"
  | "upstream_timeout"
  | "store_unavailable"
  | "shutting_down"
  | "audit_unavailable"
  | "method_not_allowed"
  | "headers_too_large"
  | "invalid_admin_token"
  | "admin_forbidden"
  | "client_closed"
  | "internal_error";

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "rate_limit_error"
  | "api_error";

export interface OpenAIErrorBody {
  error: {
    message: string;
    type: ErrorType;
    param: string | null;
    code: string;
    [extra: string]: unknown;
  };
}

export function errorTypeFor(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

export class GatewayError extends Error {
  readonly type: ErrorType;

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      param?: string | null;
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.name = "GatewayError";
    this.type = errorTypeFor(status);
  }

  toBody(): OpenAIErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.options.param ?? null, code: this.code, ...this.options.extra },
    };
  }
}

export const internalError = (): GatewayError =>
  new GatewayError(500, "internal_error", "the gateway hit an unexpected error; the request was recorded");

/** A value the client sent, as an error message quotes it: long ones cut, so a refusal never echoes megabytes. */
export function clipped(value: string, max = 200): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length} characters)`;
}
