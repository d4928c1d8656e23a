import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import createDOMPurify from 'dompurify';
import { ProblemError } from '../../http/problem.ts';

/** Largest logo accepted, before and after sanitising. */
export const MAX_LOGO_BYTES = 256 * 1024;
/** Largest PNG side accepted: a logo, not a photograph. */
export const MAX_PNG_SIDE = 4096;

export const logoContentTypes = ['image/png', 'image/svg+xml'] as const;
export type LogoContentType = (typeof logoContentTypes)[number];

export interface CheckedLogo {
  contentType: LogoContentType;
  bytes: Buffer;
  /** Pixel size of a PNG; null for SVG (it scales). */
  width: number | null;
  height: number | null;
  /** What sanitising took out of an SVG, e.g. `element script`, `attribute onload on svg`. */
  removed: string[];
}

/** A refused upload: 400 `invalid_logo`, with the reason as a field error on the body. */
export const invalidLogo = (code: string, detail: string): ProblemError =>
  new ProblemError(400, 'invalid_logo', 'Invalid logo', detail, { errors: [{ pointer: '/', location: 'body', code, detail }] });

// ---------------------------------------------------------------------------------------------------------------
// PNG: checked by structure, never decoded.

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Allowed bit depths per colour type (PNG spec, IHDR). */
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * Checks that the bytes are a whole PNG: the signature, IHDR first with sane dimensions and a valid colour
 * type / bit depth, every chunk inside the file with a correct CRC, image data present and IEND last.
 */
export function inspectPng(bytes: Buffer): { width: number; height: number } {
  if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw invalidLogo('bad_signature', 'The body is not a PNG image: the PNG signature is missing.');
  }
  let offset = 8;
  let width = 0;
  let height = 0;
  let colorType = -1;
  let sawIdat = false;
  let sawPlte = false;
  let sawIend = false;
  let index = 0;
  while (offset < bytes.length) {
    if (sawIend) throw invalidLogo('malformed_png', 'The PNG has data after its IEND chunk.');
    if (offset + 12 > bytes.length) throw invalidLogo('malformed_png', 'The PNG ends inside a chunk header.');
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw invalidLogo('malformed_png', `The PNG has an invalid chunk type at byte ${offset + 4}.`);
    const end = offset + 12 + length;
    if (length > 0x7fffffff || end > bytes.length) throw invalidLogo('malformed_png', `The PNG chunk ${type} runs past the end of the file.`);
    const crc = bytes.readUInt32BE(offset + 8 + length);
    if (crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== crc) throw invalidLogo('malformed_png', `The PNG chunk ${type} has a wrong CRC.`);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (index === 0) {
      if (type !== 'IHDR' || length !== 13) throw invalidLogo('malformed_png', 'The PNG does not start with an IHDR chunk.');
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!;
      colorType = data[9]!;
      if (width < 1 || height < 1 || width > MAX_PNG_SIDE || height > MAX_PNG_SIDE) {
        throw invalidLogo('bad_dimensions', `The PNG is ${width}×${height} pixels; each side must be between 1 and ${MAX_PNG_SIDE}.`);
      }
      if (!PNG_DEPTHS[colorType]?.includes(depth) || data[10] !== 0 || data[11] !== 0 || data[12]! > 1) {
        throw invalidLogo('malformed_png', 'The PNG header has an invalid colour type, bit depth, compression, filter or interlace method.');
      }
    } else if (type === 'IHDR') {
      throw invalidLogo('malformed_png', 'The PNG has a second IHDR chunk.');
    }
    if (type === 'PLTE') sawPlte = true;
    if (type === 'IDAT') sawIdat = true;
    if (type === 'IEND') sawIend = true;
    offset = end;
    index++;
  }
  if (!sawIdat || !sawIend) throw invalidLogo('malformed_png', 'The PNG is truncated: image data or the IEND chunk is missing.');
  if (colorType === 3 && !sawPlte) throw invalidLogo('malformed_png', 'The PNG is palette-based but has no PLTE chunk.');
  return { width, height };
}

// ---------------------------------------------------------------------------------------------------------------
// SVG: parsed as XML by jsdom, sanitised by DOMPurify's SVG allow-lists, then held to a stricter URL and CSS policy.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The few DOM members used here: the API's TypeScript settings carry no DOM library. */
interface XNode {
  nodeType: number;
  nodeName: string;
  parentNode: XNode | null;
  isConnected: boolean;
  childNodes: ArrayLike<XNode>;
  textContent: string | null;
  removeChild(child: XNode): void;
  replaceChild(replacement: XNode, child: XNode): void;
}
interface XElement extends XNode {
  localName: string;
  namespaceURI: string | null;
  attributes: ArrayLike<{ name: string; value: string }>;
  children: ArrayLike<XElement>;
  getAttribute(name: string): string | null;
  removeAttribute(name: string): void;
  querySelectorAll(selector: string): ArrayLike<XElement>;
}
interface XWindow {
  document: { documentElement: XElement | null; createTextNode(text: string): XNode };
  XMLSerializer: new () => { serializeToString(node: XNode): string };
  close(): void;
}
type JsdomCtor = new (markup: string, options: { contentType: string }) => { window: XWindow };

let jsdom: JsdomCtor | undefined;
/** jsdom is heavy: loaded on the first SVG upload, not at start-up. Required (not imported) so its DOM typings stay out. */
function loadJsdom(): JsdomCtor {
  jsdom ??= (createRequire(import.meta.url)('jsdom') as { JSDOM: JsdomCtor }).JSDOM;
  return jsdom;
}

const NODE_ELEMENT = 1;
const NODE_CDATA = 4;

/** Functions allowed in CSS (style elements and attributes, presentation attributes, transforms). */
const CSS_FUNCTIONS = new Set([
  'url', 'rgb', 'rgba', 'hsl', 'hsla', 'hwb', 'lab', 'lch', 'oklab', 'oklch', 'color', 'color-mix',
  'translate', 'translatex', 'translatey', 'translate3d', 'rotate', 'rotatex', 'rotatey', 'rotatez', 'scale', 'scalex',
  'scaley', 'matrix', 'skew', 'skewx', 'skewy', 'calc', 'min', 'max', 'clamp', 'var',
  'blur', 'brightness', 'contrast', 'drop-shadow', 'grayscale', 'hue-rotate', 'invert', 'opacity', 'saturate', 'sepia',
  'cubic-bezier', 'steps', 'linear-gradient', 'radial-gradient',
  'not', 'is', 'where', 'nth-child', 'nth-last-child', 'nth-of-type', 'nth-last-of-type', 'lang', 'dir',
]);

/**
 * Why a piece of CSS (or an attribute value that CSS rules apply to) is unsafe, or null. Only references inside
 * the drawing (`url(#id)`) are allowed: nothing may be fetched, imported, or hidden behind escapes.
 */
export function unsafeCss(css: string): string | null {
  if (/[\\<]/.test(css)) return 'escapes';
  // Comments separate tokens: `u/**/rl(` is not `url(`, but `url/**/(x)` must not slip past the checks.
  const text = css.replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ');
  if (/@(?!media\b|keyframes\b)/i.test(text)) return 'at-rule';
  if (/javascript:|behavior\s*:|-moz-binding/i.test(text)) return 'script';
  for (const match of text.matchAll(/([a-z-]+)\s*\(/gi)) {
    if (!CSS_FUNCTIONS.has(match[1]!.toLowerCase())) return `${match[1]}()`;
  }
  for (const match of text.matchAll(/url\s*\(\s*(['"]?)\s*([^'")\s]*)/gi)) {
    if (!/^#[A-Za-z_][\w.:-]*$/.test(match[2]!)) return 'external url()';
  }
  return null;
}

/** Bounds on an SVG's shape, checked before parsing: deep nesting or huge element counts cost seconds of CPU. */
export const SVG_LIMITS = { depth: 64, elements: 5000, attributes: 20000 };

const XML_TOKEN = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<(\/?)[A-Za-z_][^\s/>]*((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;

/** A lexical estimate of nesting depth and element and attribute counts (the parser still decides validity). */
function checkShape(text: string): void {
  let depth = 0;
  let maxDepth = 0;
  let elements = 0;
  let attributes = 0;
  for (const match of text.matchAll(XML_TOKEN)) {
    if (match[1] === undefined) continue; // comment, CDATA, processing instruction, DOCTYPE
    if (match[1] === '/') {
      depth--;
      continue;
    }
    elements++;
    attributes += match[2]!.match(/=\s*["']/g)?.length ?? 0;
    if (match[3] !== '/') maxDepth = Math.max(maxDepth, ++depth);
  }
  if (maxDepth > SVG_LIMITS.depth || elements > SVG_LIMITS.elements || attributes > SVG_LIMITS.attributes) {
    throw invalidLogo(
      'too_complex',
      `The SVG is too complex for a logo: at most ${SVG_LIMITS.elements} elements, ${SVG_LIMITS.attributes} attributes and ${SVG_LIMITS.depth} levels of nesting.`,
    );
  }
}

/** `href` / `xlink:href`: a reference inside the drawing, or (on `image`) an embedded raster image. */
function allowedHref(element: XElement, value: string): boolean {
  const v = value.trim();
  if (/^#[A-Za-z_][\w.:-]*$/.test(v)) return true;
  return element.localName === 'image' && /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$/.test(v);
}

/**
 * Sanitises an SVG logo. The XML must be well formed with an `<svg>` root in the SVG namespace; DTD internal
 * subsets (entity tricks) are refused. DOMPurify (SVG + SVG-filter profiles, plus `use`) removes scripts, event
 * handlers, `foreignObject`, animations and every element or attribute off its allow-lists; then every
 * `href`/`xlink:href` must point inside the drawing (or be an embedded PNG/JPEG/GIF/WebP on `image`), and every
 * style, style element or attribute value using CSS may only reference the drawing. The result is re-serialised
 * as XML.
 */
export function sanitizeSvg(input: Buffer): CheckedLogo {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    throw invalidLogo('invalid_encoding', 'The SVG is not valid UTF-8.');
  }
  text = text.replace(/^\uFEFF/, '');
  if (/<!DOCTYPE[^>]*\[/i.test(text) || /<!ENTITY/i.test(text)) {
    throw invalidLogo('dtd_not_allowed', 'The SVG declares a DTD internal subset or entities; remove the DOCTYPE.');
  }
  checkShape(text);
  const JSDOM = loadJsdom();
  let window: XWindow;
  try {
    window = new JSDOM(text, { contentType: 'image/svg+xml' }).window;
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^about:blank:/, 'line ') : 'parse error';
    throw invalidLogo('not_well_formed', `The SVG is not well-formed XML (${reason}).`);
  }
  try {
    const root = window.document.documentElement;
    if (!root || root.localName !== 'svg' || root.namespaceURI !== SVG_NS) {
      throw invalidLogo('not_svg', `The root element must be <svg xmlns="${SVG_NS}">.`);
    }
    // CDATA (common in exported <style> elements) means the same as text; DOMPurify would drop it whole.
    for (const node of descendants(root)) {
      if (node.nodeType === NODE_CDATA) node.parentNode!.replaceChild(window.document.createTextNode(node.textContent ?? ''), node);
    }

    const purify = createDOMPurify(window as never);
    purify.sanitize(root as never, { IN_PLACE: true, USE_PROFILES: { svg: true, svgFilters: true }, ADD_TAGS: ['use'] });
    const removed: string[] = [];
    for (const entry of purify.removed as Array<{ element?: XNode; attribute?: { name: string } | null; from?: XNode }>) {
      if (entry.attribute) removed.push(`attribute ${entry.attribute.name} on ${entry.from?.nodeName ?? '?'}`);
      else if (entry.element && entry.element.nodeType === NODE_ELEMENT) removed.push(`element ${entry.element.nodeName}`);
    }

    // The stricter policy on what survived.
    for (const element of [root, ...Array.from(root.querySelectorAll('*'))]) {
      if (!element.isConnected || !element.parentNode) continue; // inside an element removed earlier in this loop
      const cssProblem = element.localName === 'style' ? unsafeCss(element.textContent ?? '') : null;
      if (cssProblem) {
        element.parentNode.removeChild(element);
        removed.push(`element style (${cssProblem})`);
        continue;
      }
      for (const { name, value } of Array.from(element.attributes)) {
        // XML names are case-sensitive (`HREF` is inert), but compared without case to be safe.
        const lower = name.toLowerCase();
        // Presentation attributes are CSS too: `fill="url(http://…)"` fetches, and escapes can spell `url(`.
        const bad = lower === 'href' || lower.endsWith(':href') ? !allowedHref(element, value)
          : lower === 'style' ? unsafeCss(value) !== null
            : value.includes('\\') || (/url\s*\(/i.test(value) && unsafeCss(value) !== null);
        if (bad) {
          element.removeAttribute(name);
          removed.push(`attribute ${name} on ${element.nodeName}`);
        }
      }
      // An image left without an allowed source draws nothing and could only be a tracker: drop it.
      if (element.localName === 'image' && element.getAttribute('href') === null && element.getAttribute('xlink:href') === null) {
        element.parentNode.removeChild(element);
        removed.push('element image');
      }
    }
    if (root.children.length === 0) {
      throw invalidLogo('empty_svg', 'Nothing drawable is left in the SVG once unsafe content is removed.');
    }
    const bytes = Buffer.from(new window.XMLSerializer().serializeToString(root), 'utf8');
    if (bytes.length > MAX_LOGO_BYTES) throw invalidLogo('too_large', `The sanitised SVG is ${bytes.length} bytes; at most ${MAX_LOGO_BYTES}.`);
    return { contentType: 'image/svg+xml', bytes, width: null, height: null, removed: [...new Set(removed)] };
  } finally {
    window.close();
  }
}

function* descendants(node: XNode): Generator<XNode> {
  for (const child of Array.from(node.childNodes)) {
    yield child;
    yield* descendants(child);
  }
}

/** Checks an upload against its declared type by content: PNG structure, or SVG parsed and sanitised. */
export function checkLogo(contentType: LogoContentType, body: Buffer): CheckedLogo {
  if (body.length === 0) throw invalidLogo('empty', 'The logo is empty.');
  if (body.length > MAX_LOGO_BYTES) throw new ProblemError(413, 'payload_too_large', 'Payload too large', `The logo is ${body.length} bytes; at most ${MAX_LOGO_BYTES} (256 KiB).`);
  if (contentType === 'image/png') return { contentType, bytes: body, ...inspectPng(body), removed: [] };
  return sanitizeSvg(body);
}
