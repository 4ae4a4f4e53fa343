import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ZodError } from 'zod';
import { isErrorCode, LenixError } from '../core/errors.js';

/** Every failure leaves as `{code, message}` with the status from the one code table (core/errors.ts). */
export function toLenixError(err: unknown): LenixError {
  if (err instanceof LenixError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const first = err.validation[0];
    const where = first
      ? `${first.instancePath || err.validationContext || 'request'}: ${first.message ?? 'invalid'}`
      : 'invalid request';
    return new LenixError('BAD_REQUEST', `${err.validationContext ?? 'request'} ${where}`.slice(0, 300), {
      cause: err,
    });
  }
  if (err instanceof ZodError) {
    const first = err.issues[0];
    return new LenixError(
      'BAD_REQUEST',
      `${first?.path.join('.') || 'request'}: ${first?.message ?? 'invalid'}`.slice(0, 300),
      { cause: err },
    );
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new LenixError('BODY_TOO_LARGE', 'the request body is larger than the limit', { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new LenixError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content type', { cause: err });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new LenixError('BAD_REQUEST', 'the body is not valid JSON', { cause: err });
    default:
      break;
  }
  if (e.statusCode === 400)
    return new LenixError('BAD_REQUEST', (e.message ?? 'bad request').slice(0, 300), { cause: err });
  if (e.statusCode === 413)
    return new LenixError('BODY_TOO_LARGE', 'the request body is larger than the limit', { cause: err });
  if (e.statusCode === 415) return new LenixError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content type', { cause: err });
  if (e.code && isErrorCode(e.code)) return new LenixError(e.code, e.message ?? e.code, { cause: err });
  return new LenixError('INTERNAL', 'internal error', { cause: err });
}
