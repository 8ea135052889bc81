import { invalid, missingParam } from "./api-error.js";
import { isObj, type Obj, type Params } from "./util.js";

// Parameter readers: each throws 400 invalid_request_error like Stripe.

export function rejectUnknown(p: Params, allowed: readonly string[], prefix?: string): void {
  for (const k of Object.keys(p)) {
    if ((prefix === undefined && k === "expand") || allowed.includes(k)) continue;
    const label = prefix === undefined ? k : `${prefix}[${k}]`;
    throw invalid(`Received unknown parameter: ${label}`, label);
  }
}

export function optStr(p: Params, key: string, label = key): string | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw invalid(`Invalid string: ${label}`, label);
}

export function reqStr(p: Params, key: string, label = key): string {
  const v = optStr(p, key, label);
  if (v === undefined || v === "") throw missingParam(label);
  return v;
}

export function optInt(p: Params, key: string, label = key): number | undefined {
  const v = p[key];
  if (v === undefined || v === "") return undefined;
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
  throw invalid(`Invalid integer: ${String(v)}`, label);
}

export function optBool(p: Params, key: string, label = key): boolean | undefined {
  const v = p[key];
  if (v === undefined || v === "") return undefined;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw invalid(`Invalid boolean: ${String(v)}`, label);
}

export function optObj(p: Params, key: string, label = key): Obj | undefined {
  const v = p[key];
  if (v === undefined || v === "") return undefined;
  if (isObj(v)) return v;
  throw invalid(`Invalid object`, label);
}

export function optArr(p: Params, key: string, label = key): unknown[] | undefined {
  const v = p[key];
  if (v === undefined || v === "") return undefined;
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return [v];
  throw invalid(`Invalid array`, label);
}

/** Stripe metadata: string values; "" unsets a key. */
export function mergeMetadata(current: Obj, p: Params): Obj {
  const md = p.metadata;
  if (md === undefined) return current;
  if (md === "") return {};
  if (!isObj(md)) throw invalid("Invalid metadata", "metadata");
  const out: Obj = { ...current };
  for (const [k, v] of Object.entries(md)) {
    if (v === "" || v === null) delete out[k];
    else out[k] = String(v);
  }
  return out;
}

export function expands(p: Params): string[] {
  return (optArr(p, "expand") ?? []).map(String);
}
