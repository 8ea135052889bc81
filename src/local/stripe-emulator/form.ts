import { isObj, type Obj, type Params } from "./util.js";

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
