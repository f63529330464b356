// waitForStatus against scripted answers (no host): a restart passes through STOPPED
// ("stopped to restart") between its stop and its start; a wait for RUNNING goes on through it and
// ends at a STOPPED that says anything else.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createDev8Client, Dev8Error, waitForStatus } from "../src/index.js";

function scripted(...states: Array<[string, string | null]>) {
  let reads = 0;
  const fetch = async (): Promise<Response> => {
    const [status, reason] = states[Math.min(reads, states.length - 1)]!;
    reads += 1;
    const environment = { id: "env-0123456789abcdef", status, status_reason: reason, progress: [] };
    return new Response(JSON.stringify({ environment }), { headers: { "Content-Type": "application/json" } });
  };
  const client = createDev8Client({ baseUrl: "http://dev8.test", token: "t", fetch });
  return { client, reads: () => reads };
}

const fast = { intervalMs: 1, maxIntervalMs: 1, timeoutMs: 5_000 };

test("a wait for RUNNING goes on through a restart's stop", async () => {
  const { client, reads } = scripted(
    ["STOPPING", "restarting to resize"],
    ["STOPPED", "stopped to restart"],
    ["STARTING", "restarting to resize"],
    ["RUNNING", "running"],
  );
  const environment = await waitForStatus(client, "env-0123456789abcdef", "RUNNING", fast);
  assert.equal(environment.status, "RUNNING");
  assert.equal(reads(), 4);
});

test("a wait for RUNNING ends at a STOPPED that says why", async () => {
  const { client } = scripted(["STOPPING", null], ["STOPPED", "not started again: at most 1 environment may run"]);
  await assert.rejects(waitForStatus(client, "env-0123456789abcdef", "RUNNING", fast), (error: unknown) => {
    return error instanceof Dev8Error && error.code === "UNEXPECTED_STATUS";
  });
});
