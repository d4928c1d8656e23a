import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';
import type { FieldError } from './problem.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(options: Options): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, removeAdditional: false, ...options });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'example' });
  return ajv;
}

/**
 * Bodies are validated strictly (no type coercion, unknown fields are errors, as in Stripe); query strings,
 * path and headers arrive as text, so they are coerced to the declared types.
 */
export function installValidators(app: FastifyInstance): void {
  const strict = makeAjv({ coerceTypes: false });
  const coercing = makeAjv({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? strict.compile(schema) : coercing.compile(schema),
  );
}

const locations: Record<string, FieldError['location']> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** One JSON-pointer segment (RFC 6901): `~` and `/` escaped. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Turns ajv's errors into one field error per invalid value, with a JSON pointer and a stable code. */
export function fieldErrors(errors: FastifySchemaValidationError[], context: string | undefined): FieldError[] {
  const location = locations[context ?? 'body'] ?? 'body';
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const error of errors as ErrorObject[]) {
    let pointer = error.instancePath || '';
    let code = 'invalid';
    let detail = error.message ?? 'is invalid';
    switch (error.keyword) {
      case 'required':
        pointer += `/${escapePointer(String(error.params.missingProperty))}`;
        code = 'required';
        detail = 'is required';
        break;
      case 'additionalProperties':
        pointer += `/${escapePointer(String(error.params.additionalProperty))}`;
        code = 'unknown_field';
        detail = 'is not a known field';
        break;
      case 'type':
        code = 'invalid_type';
        detail = `must be ${String(error.params.type)}`;
        break;
      case 'format':
        code = 'invalid_format';
        detail = `must be a valid ${String(error.params.format)}`;
        break;
      case 'pattern':
        code = 'invalid_format';
        detail = 'has an invalid format';
        break;
      case 'enum':
      case 'const':
        code = 'invalid_value';
        detail = error.keyword === 'enum' ? `must be one of: ${(error.params.allowedValues as unknown[]).join(', ')}` : `must be ${JSON.stringify(error.params.allowedValue)}`;
        break;
      case 'minLength':
      case 'maxLength':
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
      case 'minItems':
      case 'maxItems':
      case 'minProperties':
      case 'maxProperties':
        code = 'out_of_range';
        break;
      case 'anyOf':
      case 'oneOf':
        // Branch errors were reported individually; the union error itself adds nothing unless alone.
        code = 'invalid_value';
        detail = 'does not match any allowed form';
        break;
    }
    // One error per location: a union reports each failed branch, which would repeat the same pointer.
    if (seen.has(pointer)) continue;
    seen.add(pointer);
    out.push({ pointer: pointer || '/', location, code, detail });
  }
  return out;
}
