import type { CliContext } from "./context.js";
import { reportCommands } from "./reports.js";
import {
  customersCreate,
  customersList,
  customersPortal,
  customersUpdate,
  keysCreate,
  keysList,
  keysRevoke,
} from "./customers.js";
import { plansList, plansUpsert } from "./plans.js";
import { demoSeed, pricingQuote, profitabilityReport } from "./pricing.js";
import { dlqList, dlqRedrive } from "./dead-letters.js";
import { creditsAutoTopUp, creditsBalance, creditsGrant, creditsLedger, creditsVoid } from "./credits.js";
import { endUsersLimit } from "./end-users.js";
import { webhooksAdd, webhooksDeliveries, webhooksList, webhooksTest } from "./webhooks.js";
import { alertsAdd, alertsDelete, alertsFired, alertsList } from "./alerts.js";

export type Command = { run: (ctx: CliContext) => Promise<void>; usage: string };

/** Every admin command; output is JSON with --json. */
export const COMMANDS: Record<string, Command> = {
  "customers:create": {
    run: customersCreate,
    usage: "customers:create --name <name> [--email <email>] [--plan <plan id>] [--stripe-customer <cus_…>]",
  },
  "customers:update": {
    run: customersUpdate,
    usage:
      "customers:update --customer <customer id> [--plan <plan id>] [--status active|past_due|suspended|canceled]",
  },
  "customers:list": {
    run: customersList,
    usage: "customers:list [--status active|past_due|suspended|canceled]",
  },
  "customers:portal": {
    run: customersPortal,
    usage:
      "customers:portal --customer <customer id>  (a signed one-hour portal link; base URL from PUBLIC_URL)",
  },
  "keys:create": { run: keysCreate, usage: "keys:create --customer <customer id>" },
  "keys:list": { run: keysList, usage: "keys:list [--customer <customer id>]" },
  "keys:revoke": { run: keysRevoke, usage: "keys:revoke <key id>" },
  ...reportCommands,
  "plans:list": { run: plansList, usage: "plans:list" },
  "plans:upsert": {
    run: plansUpsert,
    usage:
      "plans:upsert --id <id> [--name <name>] [--kind usage|tiered|hybrid|prepaid] [--base-fee-micros N] [--included-tokens N] [--overage-per-1k-micros N] [--hard-limit-tokens N|none]",
  },
  "credits:grant": {
    run: creditsGrant,
    usage:
      "credits:grant --customer <customer id> --amount-micros <n> [--expires <ISO date>] [--source manual|promotional] [--reference <ref>]",
  },
  "credits:balance": { run: creditsBalance, usage: "credits:balance --customer <customer id>" },
  "credits:void": { run: creditsVoid, usage: "credits:void --grant <grant id>" },
  "credits:ledger": {
    run: creditsLedger,
    usage: "credits:ledger --customer <customer id> [--limit N] [--before <entry id>]",
  },
  "credits:auto-top-up": {
    run: creditsAutoTopUp,
    usage:
      "credits:auto-top-up --customer <customer id> --threshold-micros <n> --amount-micros <n> --max-per-month <n> | --off",
  },
  "end-users:limit": {
    run: endUsersLimit,
    usage:
      "end-users:limit --customer <customer id> [--end-user <end user>] [--tokens <n>] [--spend-micros <n>] | --off",
  },
  "pricing:quote": {
    run: pricingQuote,
    usage:
      "pricing:quote --model <model> [--margin 4] [--input-share 75] [--cached-share 0] [--cache-write-share 0]",
  },
  profitability: { run: profitabilityReport, usage: "profitability [--period YYYY-MM] [--target 3]" },
  "demo:seed": { run: demoSeed, usage: "demo:seed" },
  "dlq:list": { run: dlqList, usage: "dlq:list [--queue <queue>] [--status open|resolved|all]" },
  "dlq:redrive": { run: dlqRedrive, usage: "dlq:redrive <dead letter id> | --all [--queue <queue>]" },
  "webhooks:add": { run: webhooksAdd, usage: "webhooks:add --url <url> [--events <type>,<type>]" },
  "webhooks:list": { run: webhooksList, usage: "webhooks:list" },
  "webhooks:test": { run: webhooksTest, usage: "webhooks:test [--endpoint <endpoint id>]" },
  "webhooks:deliveries": {
    run: webhooksDeliveries,
    usage: "webhooks:deliveries [--endpoint <endpoint id>] [--status pending|delivered|failed]",
  },
  "alerts:add": {
    run: alertsAdd,
    usage:
      "alerts:add --plan <plan id>|--customer <customer id> --kind allowance_share|hard_limit_share|balance_below|spend_above --threshold <percent|micros>",
  },
  "alerts:list": { run: alertsList, usage: "alerts:list [--plan <plan id>] [--customer <customer id>]" },
  "alerts:delete": { run: alertsDelete, usage: "alerts:delete <rule id>" },
  "alerts:fired": { run: alertsFired, usage: "alerts:fired --customer <customer id>" },
};
