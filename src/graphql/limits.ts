import {
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  isInterfaceType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
  valueFromASTUntyped,
} from 'graphql'
import { errors } from '../errors.js'
import { textProblem } from '../http/input-guard.js'
import { validationError } from '../lib/validate.js'

/**
 * What one GraphQL request may cost, checked before any resolver runs. A query is measured by the
 * field resolutions it asks for, taking every `first` page as full: `tags(first: 100) { name }`
 * costs 101, and a thousand aliases of it a hundred thousand. Aliases and root fields are limited
 * on their own too, since each alias of a root field is a separate walk through the registries.
 */
export interface QueryLimits {
  maxCost: number
  maxAliases: number
  maxRootFields: number
}

export interface QueryCost {
  cost: number
  aliases: number
  rootFields: number
}

/** The largest page any connection serves; a bigger `first` is clamped by its resolver anyway. */
const MAX_PAGE = 1000

/**
 * Measures the operation that would run. The walk stops as soon as a limit is exceeded, so a
 * fragment spread many times over (whose expansion grows exponentially) costs the walk no more than
 * the limit itself.
 */
export function measureQuery(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | undefined,
  variables: Record<string, unknown> | undefined,
  limits: QueryLimits,
): QueryCost {
  const fragments = new Map<string, FragmentDefinitionNode>()
  let operation: OperationDefinitionNode | undefined
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition)
    else if (definition.kind === Kind.OPERATION_DEFINITION) {
      if (!operationName || definition.name?.value === operationName) operation ??= definition
    }
  }
  const measured: QueryCost = { cost: 0, aliases: 0, rootFields: 0 }
  if (!operation) return measured
  const rootType =
    operation.operation === 'query'
      ? schema.getQueryType()
      : operation.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType()
  const over = () =>
    measured.cost > limits.maxCost ||
    measured.aliases > limits.maxAliases ||
    measured.rootFields > limits.maxRootFields

  const argument = (value: ValueNode): unknown => valueFromASTUntyped(value, variables ?? {})

  const walk = (selections: SelectionSetNode, typeName: string | undefined, times: number, root: boolean) => {
    const type = typeName ? schema.getType(typeName) : undefined
    const fields = type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields() : {}
    for (const selection of selections.selections) {
      if (over()) return
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) measured.aliases++
        if (root) measured.rootFields++
        measured.cost += times
        const definition = fields[selection.name.value]
        if (!selection.selectionSet || !definition) continue
        const first = selection.arguments?.find((a) => a.name.value === 'first')
        const declared = definition.args.find((a) => a.name === 'first')
        const given = first ? argument(first.value) : declared?.defaultValue
        const page =
          typeof given === 'number' && Number.isFinite(given) ? Math.min(MAX_PAGE, Math.max(1, given)) : 1
        walk(selection.selectionSet, getNamedType(definition.type).name, times * page, false)
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, selection.typeCondition?.name.value ?? typeName, times, root)
      } else {
        const fragment = fragments.get(selection.name.value)
        if (fragment) walk(fragment.selectionSet, fragment.typeCondition.name.value, times, root)
      }
    }
  }
  if (rootType) walk(operation.selectionSet, rootType.name, 1, true)
  return measured
}

/** Throws REGENT_GRAPHQL_TOO_COMPLEX naming the limit the query is over. */
export function assertWithinLimits(measured: QueryCost, limits: QueryLimits): void {
  const problems = [
    measured.aliases > limits.maxAliases && `more than ${limits.maxAliases} aliases (graphql.maxAliases)`,
    measured.rootFields > limits.maxRootFields &&
      `more than ${limits.maxRootFields} root fields (graphql.maxRootFields)`,
    measured.cost > limits.maxCost &&
      `more than ${limits.maxCost} field resolutions counting every page as full (graphql.maxCost)`,
  ].filter((p): p is string => typeof p === 'string')
  if (problems.length > 0) throw new errors.GRAPHQL_TOO_COMPLEX(problems.join('; '))
}

/** Refuses `__schema` and `__type` (what introspection queries ask for); `__typename` stays. */
export function noIntrospection(context: ValidationContext): ASTVisitor {
  return {
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        const refused = new errors.GRAPHQL_INTROSPECTION_DISABLED()
        context.reportError(
          new GraphQLError(refused.message, { nodes: [node], extensions: { code: refused.code } }),
        )
      }
    },
  }
}

/**
 * String literals in the document: the request guard sees the query only as text, in which a NUL
 * is still the escape `\u0000`. Variables arrive in the JSON body and are checked there.
 */
export function assertLiteralsTakeable(document: DocumentNode): void {
  const pending: unknown[] = [document]
  while (pending.length > 0) {
    const node = pending.pop() as { kind?: string; value?: unknown } | unknown[]
    if (Array.isArray(node)) {
      pending.push(...node)
      continue
    }
    if (!node || typeof node !== 'object') continue
    if (node.kind === Kind.STRING && typeof node.value === 'string') {
      const problem = textProblem(node.value)
      if (problem) throw validationError([{ instancePath: '', message: problem }], 'query')
    }
    for (const [key, inner] of Object.entries(node))
      if (key !== 'loc' && inner && typeof inner === 'object') pending.push(inner)
  }
}

/**
 * The request envelope (GraphQL over HTTP): a JSON object with a non-empty string `query`, and
 * `variables`, `operationName` and `extensions` of their types if present. Anything else is
 * REGENT_BAD_GRAPHQL, before mercurius would turn it into a 500 or a 200 with an error.
 */
export function envelopeProblem(method: string, body: unknown, query: unknown): string | undefined {
  const envelope = method === 'GET' ? query : body
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope))
    return method === 'GET' ? 'the query string holds no query' : 'the body must be a JSON object'
  const { query: text, variables, operationName, extensions } = envelope as Record<string, unknown>
  if (typeof text !== 'string' || text.trim() === '') return '`query` must be a non-empty string'
  // Mercurius takes a query that is not GraphQL but parses as JSON for a pre-parsed document and
  // fails on it later; no client of Regent sends one.
  try {
    JSON.parse(text)
    return '`query` must be GraphQL text'
  } catch {}
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    return '`operationName` must be a string'
  if (method === 'GET') {
    if (variables === undefined || variables === '') return undefined
    if (typeof variables !== 'string') return '`variables` must be JSON text'
    try {
      const parsed: unknown = JSON.parse(variables)
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        return '`variables` must be a JSON object'
    } catch {
      return '`variables` is not valid JSON'
    }
    return undefined
  }
  if (
    variables !== undefined &&
    variables !== null &&
    (typeof variables !== 'object' || Array.isArray(variables))
  )
    return '`variables` must be an object'
  if (
    extensions !== undefined &&
    extensions !== null &&
    (typeof extensions !== 'object' || Array.isArray(extensions))
  )
    return '`extensions` must be an object'
  return undefined
}
