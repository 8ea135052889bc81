import type { State } from "./state.js";
import { invalid } from "./api-error.js";
import { mergeMetadata, optStr } from "./params.js";
import { newId, type Obj, type Params } from "./util.js";

/** A customer in Stripe's shape, stored: what `npm start` and tests give meter events to count for. */
export function createCustomerObject(state: State, p: Params): Obj {
  const id = optStr(p, "id") ?? newId("cus", 14);
  if (state.objects.has(id))
    throw invalid(`Customer already exists: '${id}'`, "id", "resource_already_exists");
  return state.put({
    id,
    object: "customer",
    address: null,
    balance: 0,
    created: state.now(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: optStr(p, "description") ?? null,
    email: optStr(p, "email") ?? null,
    invoice_prefix: id.slice(-8).toUpperCase(),
    livemode: false,
    metadata: mergeMetadata({}, p),
    name: optStr(p, "name") ?? null,
    phone: optStr(p, "phone") ?? null,
    preferred_locales: [],
    tax_exempt: "none",
    test_clock: null,
  });
}
