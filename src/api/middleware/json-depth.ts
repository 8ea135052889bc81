import type { RequestHandler } from "express";
import { badRequest } from "../../errors.js";

/**
 * The deepest JSON accepted on /v1: objects and arrays nested at most this many levels. OpenAI
 * bodies need a handful (tool schemas a dozen or two); canonical hashing, zod and BullMQ's job
 * serialization all recurse, and a deeper value would overflow their stacks (500/503).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a parsed JSON value nests objects/arrays deeper than `max`. Iterative on purpose: the
 * check itself must not be the recursion it guards against. Linear in the value's size.
 */
export function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== "object") continue;
    if (depth > max) return true;
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children)
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return false;
}

/** Refuses over-deep JSON bodies once, at the edge, before any route recurses over them. */
export function jsonDepthLimit(max = MAX_JSON_DEPTH): RequestHandler {
  return (req, _res, next) => {
    if (jsonDepthExceeds(req.body, max)) {
      throw badRequest(`The request body nests JSON deeper than ${max} levels.`, "nesting_too_deep");
    }
    next();
  };
}
