import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppDeps } from '../../deps.ts';
import { partnerOf } from '../../http/auth.ts';
import { ProblemError, problemResponses } from '../../http/problem.ts';
import { checkLogo, logoContentTypes, MAX_LOGO_BYTES, type LogoContentType } from './logo.ts';
import { loginPage, notFoundPage, previewPage, type RenderedPage } from './render.ts';
import { Branding, BrandingLogo, BrandingUpdate, CustomerParams, DeletedBranding, SlugParams } from './schemas.ts';
import {
  brandingView,
  deleteBranding,
  deleteLogo,
  getBranding,
  getLogo,
  logoOf,
  publicBranding,
  publicLogo,
  putBranding,
  putLogo,
  type StoredLogo,
} from './service.ts';

const binary = { type: 'string', format: 'binary' };
const logoResponse = {
  description: 'The logo, as stored (an SVG sanitised).',
  content: { 'image/png': { schema: binary }, 'image/svg+xml': { schema: binary } },
};
const htmlResponse = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });

/** An SVG opened on its own is a document: it may draw, nothing else. */
const LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

function sendLogo(request: FastifyRequest, reply: FastifyReply, logo: StoredLogo, cacheControl: string): FastifyReply {
  const etag = `"${createHash('sha256').update(logo.bytes).digest('base64url').slice(0, 32)}"`;
  reply
    .header('etag', etag)
    .header('cache-control', cacheControl)
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', LOGO_CSP);
  if (request.headers['if-none-match']?.split(',').some((tag) => tag.trim() === etag)) return reply.code(304).send();
  return reply.type(logo.contentType).send(logo.bytes as never); // raw bytes: the schema documents, it does not serialise
}

function sendPage(reply: FastifyReply, page: RenderedPage, status = 200): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', page.csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .send(page.html as never);
}

/** The media type of a request body, without parameters, if it is one a logo may have. */
function logoTypeOf(request: FastifyRequest): LogoContentType | null {
  const essence = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return (logoContentTypes as readonly string[]).includes(essence) ? (essence as LogoContentType) : null;
}

/**
 * Small Business branding: per customer colours, texts, slug and logo, the public branded login page
 * (`/brand/{slug}/login`) and a preview of the private-area header. Everything is allowed only while one of the
 * customer's mailboxes has an active `branding` add-on (409 `addon_required`); the public pages answer 404 when
 * it has none.
 */
export async function brandingRoutes(app: App, deps: AppDeps): Promise<void> {
  // A scope of our own, so the raw image parsers below apply to these routes only.
  await app.register(async (scope) => routes(scope as App, deps));
}

async function routes(app: App, { db, clock, config }: AppDeps): Promise<void> {
  for (const type of logoContentTypes) {
    if (app.hasContentTypeParser(type)) app.removeContentTypeParser(type);
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: MAX_LOGO_BYTES }, (_request, body, done) => done(null, body));
  }

  app.put('/v1/customers/:id/branding', {
    schema: {
      operationId: 'putBranding',
      tags: ['Branding'],
      summary: 'Create or replace the branding of a customer',
      description:
        'Colours, texts and the public slug of the login page (`/brand/{slug}/login`). Replaces everything but the logo. ' +
        'Needs an active `branding` add-on on one of the customer\'s mailboxes (409 `addon_required`); a slug used by ' +
        'another branding is a 409 `slug_taken`. 201 when created, 200 when replaced.',
      params: CustomerParams,
      body: BrandingUpdate,
      response: { 200: Branding, 201: Branding, ...problemResponses(404, 409) },
    },
  }, async (request, reply) => {
    const { record, created } = await putBranding(db, clock, partnerOf(request).partnerId, request.params.id, request.body);
    return reply.code(created ? 201 : 200).send(brandingView(record, true, config.publicUrl));
  });

  app.get('/v1/customers/:id/branding', {
    schema: {
      operationId: 'getBranding',
      tags: ['Branding'],
      summary: 'Retrieve the branding of a customer',
      params: CustomerParams,
      response: { 200: Branding, ...problemResponses(404) },
    },
  }, async (request) => {
    const { record, active } = await getBranding(db, partnerOf(request).partnerId, request.params.id);
    return brandingView(record, active, config.publicUrl);
  });

  app.delete('/v1/customers/:id/branding', {
    schema: {
      operationId: 'deleteBranding',
      tags: ['Branding'],
      summary: 'Delete the branding of a customer, logo included',
      description: 'The login page answers 404 from then on and the slug is free again.',
      params: CustomerParams,
      response: { 200: DeletedBranding, ...problemResponses(404) },
    },
  }, async (request) => {
    await deleteBranding(db, partnerOf(request).partnerId, request.params.id);
    return { object: 'branding' as const, customer: request.params.id, deleted: true as const };
  });

  app.put('/v1/customers/:id/branding/logo', {
    bodyLimit: MAX_LOGO_BYTES,
    // Refuse an oversized upload from its Content-Length, before reading it.
    onRequest: async (request) => {
      const length = Number(request.headers['content-length'] ?? 0);
      if (length > MAX_LOGO_BYTES) {
        throw new ProblemError(413, 'payload_too_large', 'Payload too large', `The logo is ${length} bytes; at most ${MAX_LOGO_BYTES} (256 KiB).`);
      }
    },
    schema: {
      operationId: 'putBrandingLogo',
      tags: ['Branding'],
      summary: 'Upload the logo (PNG or SVG)',
      description:
        'Body: the image itself, with `Content-Type: image/png` or `image/svg+xml`, at most 256 KiB. The content must match the ' +
        'type: a PNG is checked by structure (signature, header, chunks; each side 1 to 4096 px); an SVG must be well-formed XML ' +
        'with an `<svg>` root and is sanitised: scripts, event handlers, `foreignObject`, animations, external references ' +
        '(`href`, `url()` outside the drawing) and anything off the SVG allow-lists are removed, and `removed` lists them. ' +
        'A refused upload is a 400 `invalid_logo` with the reason in `errors[0].code`. Needs the branding to exist ' +
        '(409 `branding_not_configured`) and the add-on (409 `addon_required`).',
      params: CustomerParams,
      response: { 200: BrandingLogo, ...problemResponses(404, 409, 413, 415) },
    },
  }, async (request) => {
    const type = logoTypeOf(request);
    if (!type || !Buffer.isBuffer(request.body)) {
      throw new ProblemError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the logo itself with Content-Type: image/png or image/svg+xml.');
    }
    const body = request.body;
    const { record, logo } = await putLogo(db, clock, partnerOf(request).partnerId, request.params.id, () => checkLogo(type, body));
    return {
      object: 'branding_logo' as const,
      customer: record.customerId,
      content_type: logo.contentType,
      size_bytes: logo.bytes.length,
      width: logo.width,
      height: logo.height,
      removed: logo.removed,
      url: `${config.publicUrl}/brand/${record.slug}/logo`,
    };
  });

  app.get('/v1/customers/:id/branding/logo', {
    schema: {
      operationId: 'getBrandingLogo',
      tags: ['Branding'],
      summary: 'Download the logo as stored',
      params: CustomerParams,
      response: { 200: logoResponse, ...problemResponses(404) },
    },
  }, async (request, reply) => sendLogo(request, reply, await getLogo(db, partnerOf(request).partnerId, request.params.id), 'private, no-cache'));

  app.delete('/v1/customers/:id/branding/logo', {
    schema: {
      operationId: 'deleteBrandingLogo',
      tags: ['Branding'],
      summary: 'Remove the logo; the pages show the company name alone',
      params: CustomerParams,
      response: { 200: Branding, ...problemResponses(404) },
    },
  }, async (request) => {
    const partnerId = partnerOf(request).partnerId;
    await deleteLogo(db, clock, partnerId, request.params.id);
    const { record, active } = await getBranding(db, partnerId, request.params.id);
    return brandingView(record, active, config.publicUrl);
  });

  app.get('/v1/customers/:id/branding/preview', {
    schema: {
      operationId: 'previewBranding',
      tags: ['Branding'],
      summary: 'Preview of the private-area header, as an HTML page',
      description:
        'A self-contained page (the logo inlined as a data: URI) showing the branded header of the private area with sample ' +
        'content; show it e.g. in an iframe\'s `srcdoc`. It carries its own Content-Security-Policy and no script.',
      params: CustomerParams,
      response: { 200: htmlResponse('The preview page.'), ...problemResponses(404) },
    },
  }, async (request, reply) => {
    const { record, active } = await getBranding(db, partnerOf(request).partnerId, request.params.id);
    return sendPage(reply, previewPage(record, await logoOf(db, record), active));
  });

  // The public pages: for people's browsers, not part of the JSON API (hidden from the OpenAPI document).
  app.get('/brand/:slug/login', {
    config: { public: true },
    schema: { hide: true, params: SlugParams },
  }, async (request, reply) => {
    const record = await publicBranding(db, request.params.slug);
    if (!record) return sendPage(reply, notFoundPage(), 404);
    return sendPage(reply, loginPage(record, record.logoContentType ? `/brand/${encodeURIComponent(record.slug)}/logo` : null));
  });

  app.get('/brand/:slug/logo', {
    config: { public: true },
    schema: { hide: true, params: SlugParams },
  }, async (request, reply) => {
    const logo = await publicLogo(db, request.params.slug);
    if (!logo) throw new ProblemError(404, 'resource_missing', 'Resource not found', `No logo for '${request.params.slug}'.`);
    return sendLogo(request, reply, logo, 'public, max-age=300');
  });
}
