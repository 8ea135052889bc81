import type { AuthenticatedCustomer } from "../billing/customers/customers.js";
import { servesRequests } from "../billing/pricing/plans.js";
import { HttpError } from "../errors.js";

/** Answers 402 for a customer whose plan meterline does not serve (see servesRequests). */
export function refuseUnservedPlan(customer: AuthenticatedCustomer): void {
  if (servesRequests(customer.plan)) return;
  throw new HttpError(
    402,
    `Plan '${customer.plan.id}' is prepaid, and requests do not spend prepaid credits yet: ` +
      "they are refused rather than served unpaid. Move the customer to another plan to serve it.",
    "insufficient_quota",
    "plan_not_served",
  );
}
