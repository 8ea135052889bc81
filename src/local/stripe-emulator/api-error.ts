import type { Obj } from "./util.js";

/** An error answered in Stripe's shape: `{"error":{type,message,code?,param?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { code?: string; param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
  body(): Obj {
    const e: Obj = { type: this.type, message: this.message };
    if (this.extra.code !== undefined) e.code = this.extra.code;
    if (this.extra.param !== undefined) e.param = this.extra.param;
    return { error: e };
  }
}

export const invalid = (message: string, param?: string, code?: string): ApiError =>
  new ApiError(400, "invalid_request_error", message, { param, code });
export const missingParam = (param: string): ApiError =>
  invalid(`Missing required param: ${param}.`, param, "parameter_missing");
export const noSuch = (kind: string, id: string, param = "id", status = 404): ApiError =>
  new ApiError(status, "invalid_request_error", `No such ${kind}: '${id}'`, {
    code: "resource_missing",
    param,
  });
