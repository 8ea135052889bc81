import { randomBytes } from "node:crypto";

export type Obj = Record<string, unknown>;
export type Params = Record<string, unknown>;

export const API_VERSION = "2026-10-28.endive";

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** Stripe-looking random id: `${prefix}_` + 24 base62 characters. */
export function newId(prefix: string, len = 24): string {
  const bytes = randomBytes(len);
  let s = "";
  for (const b of bytes) s += ALPHABET[b % 62];
  return `${prefix}_${s}`;
}

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

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

function splitKey(key: string): string[] {
  const open = key.indexOf("[");
  if (open <= 0) return [key];
  const out = [key.slice(0, open)];
  const re = /\[([^\]]*)\]/g;
  re.lastIndex = open;
  for (let m = re.exec(key); m; m = re.exec(key)) out.push(m[1] ?? "");
  return out;
}

function arrayify(v: unknown): unknown {
  if (!isObj(v)) return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = arrayify(v[k]);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => v[k]);
  }
  return v;
}

/**
 * qs-style form decoder for what stripe-node sends: `a[b][c]=v`, indexed arrays `a[0][x]=v`,
 * and `a[]=v`. Objects whose keys are all integers become arrays (ordered by index).
 */
export function parseForm(input: string): Params {
  const root: Obj = {};
  for (const part of input.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const path = splitKey(decode(eq === -1 ? part : part.slice(0, eq)));
    const value = decode(eq === -1 ? "" : part.slice(eq + 1));
    if (path.some((p) => UNSAFE_KEYS.has(p))) continue;
    let node: Obj = root;
    for (let i = 0; i < path.length; i++) {
      let seg = path[i] as string;
      if (seg === "") seg = String(Object.keys(node).length);
      if (i === path.length - 1) {
        node[seg] = value;
      } else {
        const next = node[seg];
        if (isObj(next)) node = next;
        else {
          const created: Obj = {};
          node[seg] = created;
          node = created;
        }
      }
    }
  }
  return arrayify(root) as Params;
}

/** JSON with sorted keys, for comparing request parameters regardless of order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v)) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

// ---- parameter readers (all throw 400 invalid_request_error like Stripe) ----

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

/** Stripe list pagination over items already in list order (newest first). */
export function paginate(items: Obj[], p: Params, url: string): Obj {
  const limit = optInt(p, "limit") ?? 10;
  if (limit < 1 || limit > 100) throw invalid("This value must be between 1 and 100.", "limit");
  const after = optStr(p, "starting_after");
  const before = optStr(p, "ending_before");
  let start = 0;
  let end = items.length;
  if (after !== undefined) {
    const i = items.findIndex((o) => o.id === after);
    if (i === -1) throw noSuch("object", after, "starting_after", 400);
    start = i + 1;
  } else if (before !== undefined) {
    const i = items.findIndex((o) => o.id === before);
    if (i === -1) throw noSuch("object", before, "ending_before", 400);
    end = i;
    start = Math.max(0, end - limit);
  }
  const data = items.slice(start, Math.min(end, start + limit));
  const hasMore = before !== undefined ? start > 0 : start + limit < end;
  return { object: "list", data, has_more: hasMore, url };
}

/** Deterministic PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
