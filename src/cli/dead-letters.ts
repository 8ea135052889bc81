import { listDeadLetters, type DeadLetter } from "../queues/dead-letters.js";
import { redriveDeadLetter } from "../queues/redrive.js";
import { optionalFlag, type CliContext } from "./context.js";
import { UsageError } from "../errors.js";

const line = (l: DeadLetter) =>
  `${l.id}\t${l.queue}\t${l.job_id}\t${l.attempts} attempts\t${l.failed_at.toISOString()}\t${l.resolved_at ? "resolved" : "open"}\t${l.reason}`;

/** dlq:list [--queue q] [--status open|resolved|all] */
export async function dlqList(ctx: CliContext): Promise<void> {
  const status = optionalFlag(ctx, "status") ?? "open";
  if (!["open", "resolved", "all"].includes(status))
    throw new UsageError("--status is open, resolved or all");
  const letters = await listDeadLetters(ctx.db(), {
    queue: optionalFlag(ctx, "queue"),
    status: status as "open" | "resolved" | "all",
    limit: 1_000,
  });
  ctx.print(letters.length ? letters.map(line).join("\n") : "no dead letters", letters);
}

/** dlq:redrive <id> | --all [--queue q]: puts dead letters' jobs back to work; safe to repeat. */
export async function dlqRedrive(ctx: CliContext): Promise<void> {
  const id = ctx.args[0];
  const all = ctx.flags.all === true;
  if (!all && (id === undefined || !/^[1-9]\d*$/.test(id)))
    throw new UsageError("give a dead letter id or --all");
  const { db, queues } = ctx.deps();
  const ids = all
    ? (await listDeadLetters(db, { queue: optionalFlag(ctx, "queue"), limit: 10_000 })).map((l) => l.id)
    : [Number(id)];
  const results = [];
  for (const letter of ids) {
    results.push({ id: letter, outcome: await redriveDeadLetter(db, queues.byName, letter) });
  }
  if (!all && results[0]?.outcome === "not-found") {
    ctx.exitCode = 1;
  }
  ctx.print(
    results.length ? results.map((r) => `${r.id}\t${r.outcome}`).join("\n") : "no dead letters",
    results,
  );
}
