import {
  createApiKey,
  createCustomer,
  updateCustomer,
  type CustomerStatus,
} from "../billing/customers/customers.js";
import { seedDefaultPlans } from "../billing/pricing/plans.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";
import { UsageError } from "../errors.js";

export async function customersCreate(ctx: CliContext): Promise<void> {
  const input = {
    name: requireFlag(ctx, "name"),
    email: optionalFlag(ctx, "email"),
    planId: optionalFlag(ctx, "plan"),
    stripeCustomerId: optionalFlag(ctx, "stripe-customer"),
  };
  const db = ctx.db();
  await seedDefaultPlans(db);
  const customer = await createCustomer(db, input);
  ctx.print(`created customer ${customer.id} (${customer.name}) on plan ${customer.planId}`, customer);
}

export async function keysCreate(ctx: CliContext): Promise<void> {
  const customerId = requireFlag(ctx, "customer");
  const key = await createApiKey(ctx.db(), customerId);
  ctx.print(`API key for ${customerId} (shown once, store it now):\n${key.key}`, {
    customerId,
    id: key.id,
    prefix: key.prefix,
    key: key.key,
  });
}

const STATUSES: readonly CustomerStatus[] = ["active", "past_due", "suspended", "canceled"];

export async function customersUpdate(ctx: CliContext): Promise<void> {
  const id = requireFlag(ctx, "customer");
  const planId = optionalFlag(ctx, "plan");
  const status = optionalFlag(ctx, "status");
  if (planId === undefined && status === undefined) throw new UsageError("give --plan and/or --status");
  if (status !== undefined && !STATUSES.includes(status as CustomerStatus))
    throw new UsageError(`--status must be one of ${STATUSES.join(", ")}`);
  const customer = await updateCustomer(ctx.db(), id, {
    planId,
    status: status as CustomerStatus | undefined,
  });
  ctx.print(`customer ${customer.id} is on plan ${customer.planId}, status ${customer.status}`, customer);
}
