import { Type } from 'typebox'

/** The body of every error answer, REST-wide. Routes list it for each error status they can return. */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable REGENT_* code', examples: ['REGENT_NOT_FOUND'] }),
      message: Type.String(),
      requestId: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody', title: 'ErrorBody' },
)

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref('ErrorBody')]))
