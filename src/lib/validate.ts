import { AjvCompiler } from '@fastify/ajv-compiler'
import type { Static, TSchema } from 'typebox'
import { errors } from '../errors.js'

/**
 * One validation for every adapter. REST validates bodies with Fastify's Ajv; services call
 * `validated` with the very schemas the routes declare, compiled by the same compiler with the same
 * options, so GraphQL arguments and Slack commands meet exactly REST's limits and get the same
 * REGENT_VALIDATION answer (the same messages and `details`).
 */

/** Ajv options of the app (buildApp passes them to Fastify) and of `validated`. */
export const AJV_OPTIONS = { allErrors: true } as const

interface AjvError {
  instancePath: string
  message?: string
  params?: Record<string, unknown>
}

interface ValidateFunction {
  (value: unknown): boolean
  errors?: AjvError[] | null
}

const compile = AjvCompiler()({}, { customOptions: AJV_OPTIONS }) as (route: {
  schema: unknown
}) => ValidateFunction
const compiled = new WeakMap<TSchema, ValidateFunction>()

/** The `details` of a REGENT_VALIDATION answer: one entry per failing field, named from `part`. */
export function validationDetails(failures: readonly AjvError[], part: string) {
  return failures.map((v) => ({
    field: `${part}${v.instancePath.replaceAll('/', '.')}`.replace(/\.$/, ''),
    message: v.message ?? 'is invalid',
    ...(v.params && 'missingProperty' in v.params ? { missing: v.params.missingProperty } : {}),
  }))
}

/** REGENT_VALIDATION naming every failing field, as the REST error handler answers it. */
export function validationError(failures: readonly AjvError[], part: string): Error {
  const details = validationDetails(failures, part)
  const summary = details.map((d) => `${d.field} ${d.message}`).join('; ')
  return Object.assign(new errors.VALIDATION(summary), { details })
}

/**
 * A checked copy of `value` (defaults applied, unknown properties dropped, as REST does), or
 * REGENT_VALIDATION. `part` names the fields in the answer (`input.reason`).
 */
export function validated<T extends TSchema>(schema: T, value: unknown, part = 'input'): Static<T> {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = compile({ schema })
    compiled.set(schema, validate)
  }
  const copy = structuredClone(value ?? {})
  if (!validate(copy)) throw validationError(validate.errors ?? [], part)
  return copy as Static<T>
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Ids arrive as path parameters (checked by the route schema) and as GraphQL `ID`s (not checked):
 * both get REST's answer for a malformed one, before Postgres would fail casting it.
 */
export function assertUuid(id: string, part = 'id'): void {
  if (!UUID.test(id)) throw validationError([{ instancePath: '', message: 'must match format "uuid"' }], part)
}
