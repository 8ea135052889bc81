import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { chatProcesses } from "../lib/chat-processes.js";
import { cpuSince, perRequestSplit } from "../lib/cpu-split.js";
import { requireAccepted, runLoad, type LoadResult } from "../lib/load.js";
import { startPortkey } from "../lib/peer.js";
import { CHAT_BODY } from "../lib/stack.js";
import { unavailable, type Row } from "../lib/table.js";
import { PEER_VERSION } from "../lib/options.js";

const LEVELS = [1, 10, 50] as const;
const TARGETS = ["direct to the emulator", `Portkey ${PEER_VERSION}`, "meterline sync"] as const;

/** p1…p9: for 1, 10 and 50 connections, the emulator direct, through Portkey, through meterline. */
export const PEER_ROWS: [string, string][] = LEVELS.flatMap((c, i) =>
  TARGETS.map((t, j): [string, string] => [
    `p${i * TARGETS.length + j + 1}`,
    `${t}, ${c} connection${c > 1 ? "s" : ""}`,
  ]),
);

/**
 * (p) A peer on the same machine and the same 0 ms emulator (issue 17): Portkey's open-source
 * gateway, which forwards a chat and keeps no queue and no ledger, beside meterline's synchronous
 * chat (queue, worker, ledger). The three targets take turns at each load level, so the machine's
 * drift touches them alike. Only with `--peer`: otherwise the rows say how to get them.
 */
export const peerComparison: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  if (!options.peer)
    return PEER_ROWS.map(([id, label]) => unavailable(id, label, "not measured (run with --peer)"));
  const emulator = await stack.emulator();
  await emulator.setLatency(0);
  const web = await stack.web();
  await stack.defaultWorker();
  const portkey = await startPortkey(stack.children, ctx.log);
  try {
    const auth = { "content-type": "application/json" };
    const targets = [
      {
        url: `${emulator.url}/chat/completions`,
        headers: { ...auth, authorization: "Bearer sk-bench" },
        names: [],
      },
      {
        url: `${portkey.url}/v1/chat/completions`,
        headers: { ...auth, authorization: "Bearer sk-bench", ...portkey.upstreamHeaders(emulator.url) },
        names: ["portkey"],
      },
      {
        url: `${web.url}/v1/chat/completions`,
        headers: { ...auth, authorization: `Bearer ${env.customer.key}` },
        names: ["web", "worker"],
      },
    ];
    const rows: Row[] = [];
    for (const [i, connections] of LEVELS.entries()) {
      const results: LoadResult[] = [];
      for (const [j, target] of targets.entries()) {
        const [id, label] = PEER_ROWS[i * TARGETS.length + j]!;
        ctx.log(`p. ${label}`);
        const spec = {
          url: target.url,
          method: "POST",
          headers: target.headers,
          body: CHAT_BODY,
          connections,
        };
        if (options.warmup > 0) await runLoad(spec, options.warmup / 2, 0);
        const spent = cpuSince(await chatProcesses(ctx, target.names, { services: j === 2 }));
        const r = await runLoad(spec, options.peerDuration, 0);
        const split = spent();
        const cpu = [...split.values()].reduce((a, b) => a + b, 0);
        requireAccepted(r, label);
        results.push(r);
        const peer = j === 2 ? results[1] : undefined;
        const failed = r.failures ? `, ${r.failures} failed` : "";
        const versus = peer ? `; p50 ${ratio(r.p50, peer.p50)}, p99 ${ratio(r.p99, peer.p99)} Portkey's` : "";
        rows.push({
          id,
          label,
          value: r.rps,
          unit: "req/s",
          detail: `p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, ${((cpu * 1000) / r.completed).toFixed(2)} ms CPU/req (${perRequestSplit(split, r.completed)})${failed}${versus}`,
          ...(peer && {
            baseline: { id: rows.at(-1)!.id, value: peer.rps, unit: "req/s" },
            ratio: r.rps / peer.rps,
          }),
        });
      }
    }
    return rows;
  } finally {
    await portkey.child.stop();
  }
};

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : "—");
