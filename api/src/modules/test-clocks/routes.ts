import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { testClockStatuses } from '@pec-partner/db';
import type { App } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ListOf, ListQuery, toPage } from '../../http/pagination.ts';
import { problemResponses } from '../../http/problem.ts';
import {
  advanceTestClock, createTestClock, deleteTestClock, getTestClock, listTestClocks, MAX_ADVANCE_YEARS, type TestClockDeps, type TestClockRunner,
} from './service.ts';

const time = Type.String({ format: 'date-time' });

const TestClock = Type.Object(
  {
    id: Type.String({ description: 'Prefixed `clk_`.' }),
    object: Type.Literal('test_clock'),
    name: Type.Union([Type.String(), Type.Null()]),
    frozen_time: Type.String({ format: 'date-time', description: "The test world's time: its requests and its scheduled work happen at this instant." }),
    status: Type.Enum(testClockStatuses, { description: '`advancing` while what falls due up to `advancing_to` is being run; then `ready`.' }),
    advancing_to: Type.Union([time, Type.Null()], { description: 'While `advancing`: the time the clock is moving to.' }),
    created_at: time,
  },
  { title: 'TestClock' },
);

const IdParams = Type.Object({ id: Type.String({ pattern: '^clk_[0-9a-z]{26}$', description: 'A test clock id (`clk_…`).' }) }, { additionalProperties: false });

/** Every route here is `testModeOnly`: authentication has refused live keys already (403 `test_mode_only`). */
const testPartnerOf = (request: FastifyRequest): string => partnerOf(request).partnerId;

export async function testClockRoutes(app: App, deps: TestClockDeps & { testClocks: TestClockRunner }): Promise<void> {
  const tags = ['Test clocks'];
  const testOnly = 'Test mode only (`sk_test_` keys); a live key gets 403 `test_mode_only`.';

  app.post('/v1/test_clocks', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'createTestClock',
      tags,
      summary: "Create a test clock: freeze the test world's time",
      description:
        'From now on every request made with this test world\'s keys, and every renewal, expiry, grace period, notice, ' +
        'domain check, top-up and invitation expiry of its objects, happens at `frozen_time` (default: now), until the ' +
        'clock is advanced or deleted. The scheduled maintenance skips the world meanwhile. One clock per test world: ' +
        `a second is 409 \`test_clock_exists\`. ${testOnly}`,
      body: Type.Object(
        {
          frozen_time: Type.Optional(Type.String({ format: 'date-time', description: 'RFC 3339; default now.' })),
          name: Type.Optional(Type.String({ maxLength: 200 })),
        },
        { title: 'TestClockCreate', additionalProperties: false },
      ),
      response: { 201: TestClock, ...problemResponses(403, 409) },
    },
  }, async (request, reply) => {
    const clock = await createTestClock(deps, testPartnerOf(request), request.body ?? {});
    return reply.code(201).header('location', `/v1/test_clocks/${clock.id}`).send(clock);
  });

  app.get('/v1/test_clocks', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'listTestClocks',
      tags,
      summary: "List the test world's clocks (at most one)",
      description: testOnly,
      querystring: Type.Object(ListQuery, { additionalProperties: false }),
      response: { 200: ListOf(TestClock, 'TestClockList'), ...problemResponses(403) },
    },
  }, async (request) => {
    const { limit = 10, starting_after } = request.query;
    return toPage(await listTestClocks(deps, testPartnerOf(request), { limit, startingAfter: starting_after }), limit);
  });

  app.get('/v1/test_clocks/:id', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'getTestClock',
      tags,
      summary: 'Retrieve a test clock',
      description: testOnly,
      params: IdParams,
      response: { 200: TestClock, ...problemResponses(403, 404) },
    },
  }, async (request) => getTestClock(deps, testPartnerOf(request), request.params.id));

  app.post('/v1/test_clocks/:id/advance', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'advanceTestClock',
      tags,
      summary: 'Advance a test clock',
      description:
        'Moves the clock forward to `frozen_time` (later than its time, at most ' + `${MAX_ADVANCE_YEARS}` + ' years ahead per call), ' +
        'running, in order and for this world only, everything that falls due on the way: expiry notices, automatic ' +
        'renewals charged from test credit (with their add-ons), suspension for want of credit, expiry after the grace ' +
        'period, scheduled cancellations, domain decertification, top-up and invitation expiry. The world\'s pending PEC ' +
        'timers (12 h delay warning, 24 h timeout notice) move closer by the same amount and run if due. The answer is ' +
        'the clock `advancing` (event `test_clock.advancing`); the work runs in the background, and the clock becomes ' +
        '`ready` (event `test_clock.ready`) when done: poll the clock or listen for the event. Requests made meanwhile ' +
        'run at the clock\'s current, intermediate time. 409 `test_clock_advancing` while an advance is under way. ' + testOnly,
      params: IdParams,
      body: Type.Object(
        { frozen_time: Type.String({ format: 'date-time', description: 'The new time (RFC 3339).' }) },
        { title: 'TestClockAdvance', additionalProperties: false },
      ),
      response: { 200: TestClock, ...problemResponses(403, 404, 409) },
    },
  }, async (request) => {
    const clock = await advanceTestClock(deps, testPartnerOf(request), request.params.id, new Date(request.body.frozen_time));
    void deps.testClocks.kick(clock.id);
    return clock;
  });

  app.delete('/v1/test_clocks/:id', {
    config: { testModeOnly: true },
    schema: {
      operationId: 'deleteTestClock',
      tags,
      summary: 'Delete a test clock: the test world returns to real time',
      description:
        'Objects keep their dates. Those dated after the real time (a term the clock ran ahead) fall due when real time ' +
        'reaches them; those already due are handled by the next scheduled run, as if it were late. ' + testOnly,
      params: IdParams,
      response: {
        200: Type.Object({ id: Type.String(), object: Type.Literal('test_clock'), deleted: Type.Literal(true) }, { title: 'DeletedTestClock' }),
        ...problemResponses(403, 404),
      },
    },
  }, async (request) => deleteTestClock(deps, testPartnerOf(request), request.params.id));
}
