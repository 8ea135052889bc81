import type { Ctx, Route, State } from "./state.js";
import { invalid } from "./api-error.js";
import { mergeMetadata, optBool, optStr, reqStr } from "./params.js";
import { newId, type Obj, type Params } from "./util.js";

// Products and subscriptions, as far as meterline's Stripe setup and webhook handling call them.
// Unknown parameters are ignored here.

/** A product in Stripe's shape (also what a price's `product_data` creates); `name` is required. */
export function productObject(state: State, p: Params, id: string, nameLabel = "name"): Obj {
  const now = state.now();
  return {
    id,
    object: "product",
    active: optBool(p, "active") ?? true,
    created: now,
    default_price: null,
    description: optStr(p, "description") ?? null,
    livemode: false,
    metadata: mergeMetadata({}, p),
    name: reqStr(p, "name", nameLabel),
    type: "service",
    updated: now,
  };
}

function createProduct(ctx: Ctx): Obj {
  const id = optStr(ctx.params, "id") ?? newId("prod", 14);
  if (ctx.state.objects.has(id)) throw invalid(`Product already exists.`, "id", "resource_already_exists");
  return ctx.state.put(productObject(ctx.state, ctx.params, id));
}

const stored =
  (kind: string, label: string) =>
  (ctx: Ctx): Obj =>
    ctx.state.find(kind, ctx.pathParams.id ?? "", label);

export const catalogRoutes: Route[] = [
  { method: "POST", template: "/v1/products", handler: createProduct },
  { method: "GET", template: "/v1/products/:id", handler: stored("product", "product") },
  { method: "GET", template: "/v1/subscriptions/:id", handler: stored("subscription", "subscription") },
];
