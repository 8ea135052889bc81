import { invalid, noSuch } from "./api-error.js";
import { optInt, optStr } from "./params.js";
import type { Obj, Params } from "./util.js";

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
