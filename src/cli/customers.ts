import { createApiKey, createCustomer } from "../billing/customers.js";
import { seedDefaultPlans } from "../billing/plans.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";

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
