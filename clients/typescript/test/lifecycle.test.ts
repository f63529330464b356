// Drives the live local host through the client (node --test): create -> wait for RUNNING ->
// connection -> stop -> start -> delete. DEV8_API_URL and DEV8_TOKEN name the host and a token
// (tests/clients/test_typescript.py starts the host and runs this).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  type AuditEvent,
  createDev8Client,
  Dev8Error,
  eachEnvironment,
  eachEvent,
  type Environment,
  type Phase,
  unwrap,
  waitForDeletion,
  waitForStatus,
} from "../src/index.js";

const baseUrl = process.env.DEV8_API_URL;
const token = process.env.DEV8_TOKEN;

test("an environment's whole lifecycle through the typed client", { skip: !baseUrl || !token }, async () => {
  const client = createDev8Client({ baseUrl: baseUrl!, token: async () => token });

  const catalog = unwrap(await client.GET("/v1/templates"));
  assert.ok(catalog.templates.some((template) => template.name === "node"));

  const created = unwrap(
    await client.POST("/v1/environments", {
      body: { name: "ts-demo", template: "node", size: "small" },
      params: { header: { "Idempotency-Key": `ts-demo-${Date.now()}` } },
    }),
  ).environment;
  assert.equal(created.status, "CREATING");

  const phases: Phase[] = [];
  const running = await waitForStatus(client, created.id, "RUNNING", {
    timeoutMs: 240_000,
    onProgress: (environment) => {
      for (const step of environment.progress) if (!phases.includes(step.phase)) phases.push(step.phase);
    },
  });
  assert.equal(running.status, "RUNNING");
  assert.equal(phases.at(-1), "ide_answering");
  assert.ok(running.progress.every((step) => step.ended_at !== null));

  const path = { params: { path: { environment_id: created.id } } };
  const connection = unwrap(await client.GET("/v1/environments/{environment_id}/connection", path));
  assert.ok(connection.password.length >= 16);
  assert.ok(connection.vs_code_url?.startsWith("http"));

  unwrap(await client.POST("/v1/environments/{environment_id}/stop", path));
  await waitForStatus(client, created.id, "STOPPED", { timeoutMs: 240_000 });
  const refused = await client.GET("/v1/environments/{environment_id}/connection", path);
  assert.throws(() => unwrap(refused), (error: unknown) => error instanceof Dev8Error && error.code === "INVALID_STATE");

  unwrap(await client.POST("/v1/environments/{environment_id}/start", path));
  const again = await waitForStatus(client, created.id, "RUNNING", { timeoutMs: 240_000 });
  assert.equal(again.progress[0]?.phase, "compute_requested");

  // The paged routes followed to their end, a page of one at a time: the same as the plain GETs.
  const trail = unwrap(await client.GET("/v1/environments/{environment_id}/events", path)).events;
  const paged: AuditEvent[] = [];
  for await (const event of eachEvent(client, created.id, 1)) paged.push(event);
  assert.ok(trail.length >= 6);
  assert.deepEqual(paged.slice(paged.length - trail.length), trail);
  assert.equal(paged.at(-1)?.reason, "created");
  const listed: Environment[] = [];
  for await (const environment of eachEnvironment(client, 1)) listed.push(environment);
  assert.deepEqual(
    listed.map((environment) => environment.id),
    unwrap(await client.GET("/v1/environments")).environments.map((environment) => environment.id),
  );
  assert.ok(listed.some((environment) => environment.id === created.id));

  unwrap(await client.DELETE("/v1/environments/{environment_id}", path));
  await waitForDeletion(client, created.id, { timeoutMs: 240_000 });
  const gone = await client.GET("/v1/environments/{environment_id}", path);
  assert.equal(gone.response.status, 404);
  assert.equal(gone.error?.code, "NOT_FOUND");
});

test("a refusal carries the API's message and code", { skip: !baseUrl || !token }, async () => {
  const client = createDev8Client({ baseUrl: baseUrl!, token: token! });
  const answer = await client.POST("/v1/environments", { body: { name: "x", template: "node", size: "huge" as "small" } });
  assert.throws(
    () => unwrap(answer),
    (error: unknown) => error instanceof Dev8Error && error.status === 400 && error.code === "VALIDATION_ERROR",
  );
  const anonymous = createDev8Client({ baseUrl: baseUrl!, token: () => undefined });
  const refused = await anonymous.GET("/v1/environments");
  assert.equal(refused.response.status, 401);
});
