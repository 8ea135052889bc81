import type { Knex } from "knex";
import * as foundation from "./20261127000000_foundation.js";
import * as deadLetters from "./20261127000100_dead_letters.js";
import * as subscriptions from "./20261127000200_subscriptions.js";
import * as usageReports from "./20261127000400_usage_reports.js";
import * as ingestedUsage from "./20261127000300_ingested_usage.js";
import * as stripeEvents from "./20261127000500_stripe_events.js";
import * as chatRequests from "./20261202000100_chat_requests.js";
import * as invoices from "./20261202000200_invoices.js";
import * as reportAttempts from "./20261202000300_report_attempts.js";
import * as billingPeriods from "./20261202000400_billing_periods.js";
import * as usageBounds from "./20261202001200_usage_bounds.js";
import * as modelAliases from "./20261202001300_model_aliases.js";
import * as creditLedger from "./20261202002000_credit_ledger.js";
import * as outgoingWebhooks from "./20261202002100_outgoing_webhooks.js";
import * as usageCharges from "./20261202002200_usage_charges.js";
import * as creditTopUps from "./20261202002300_credit_top_ups.js";
import * as alerts from "./20261202002400_alerts.js";
import * as usageTaxonomy from "./20261202002500_usage_taxonomy.js";
import * as endUsers from "./20261202002600_end_users.js";
import * as usageHourly from "./20261202002700_usage_hourly.js";
import * as reportBatches from "./20261202002800_report_batches.js";
import * as usageDaily from "./20261202003160_usage_daily.js";
import * as usageHourlyTokens from "./20261202003100_usage_hourly_tokens.js";
import * as partitionUsageEvents from "./20261202003150_partition_usage_events.js";

type Migration = { up: (knex: Knex) => Promise<void>; down: (knex: Knex) => Promise<void> };

// Listed here rather than discovered on disk, so the same migrations run from TypeScript (tsx,
// vitest) and from compiled JavaScript (the release phase) without loader tricks.
const migrations: Record<string, Migration> = {
  "20261127000000_foundation": foundation,
  "20261127000100_dead_letters": deadLetters,
  "20261127000200_subscriptions": subscriptions,
  "20261127000400_usage_reports": usageReports,
  "20261127000300_ingested_usage": ingestedUsage,
  "20261127000500_stripe_events": stripeEvents,
  "20261202000100_chat_requests": chatRequests,
  "20261202000200_invoices": invoices,
  "20261202000300_report_attempts": reportAttempts,
  "20261202000400_billing_periods": billingPeriods,
  "20261202001200_usage_bounds": usageBounds,
  "20261202001300_model_aliases": modelAliases,
  "20261202002000_credit_ledger": creditLedger,
  "20261202002100_outgoing_webhooks": outgoingWebhooks,
  "20261202002200_usage_charges": usageCharges,
  "20261202002300_credit_top_ups": creditTopUps,
  "20261202002400_alerts": alerts,
  "20261202002500_usage_taxonomy": usageTaxonomy,
  "20261202002600_end_users": endUsers,
  "20261202002700_usage_hourly": usageHourly,
  "20261202002800_report_batches": reportBatches,
  "20261202003160_usage_daily": usageDaily,
  "20261202003100_usage_hourly_tokens": usageHourlyTokens,
  "20261202003150_partition_usage_events": partitionUsageEvents,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return migration;
  },
};
