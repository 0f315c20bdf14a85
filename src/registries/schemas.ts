import { Type } from 'typebox'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const RegistryParamsSchema = Type.Object({
  registry: Type.String({ description: 'Configured registry name' }),
})

export const RepositoryParamsSchema = Type.Object({
  registry: Type.String({ description: 'Configured registry name' }),
  repository: Type.String({
    description: 'Repository name as one URL-encoded path segment: `payments%2Fapi`',
  }),
})

export const ManifestParamsSchema = Type.Object({
  registry: Type.String(),
  repository: Type.String({ description: 'Repository name as one URL-encoded path segment' }),
  reference: Type.String({ description: 'A tag or a digest (`sha256:…`)' }),
})

export const PageQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 2048, description: 'nextCursor of the previous page' })),
})

export const RepositoryQuerySchema = Type.Object({
  prefix: Type.Optional(Type.String({ maxLength: 255 })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 2048 })),
})

export const CapabilitiesSchema = Type.Object({
  probedAt: Type.String({ format: 'date-time' }),
  authKind: Nullable(Type.String()),
  catalog: Nullable(Type.Boolean()),
  deleteEnabled: Nullable(Type.Boolean()),
  tagDelete: Nullable(Type.Boolean()),
  referrersApi: Nullable(Type.Boolean()),
  notes: Type.Array(Type.String()),
})

export const RegistryViewSchema = Type.Object(
  {
    name: Type.String(),
    kind: Type.String(),
    url: Type.String(),
    health: Type.Union([Type.Literal('ok'), Type.Literal('unreachable'), Type.Literal('unknown')]),
    capabilities: Nullable(CapabilitiesSchema),
  },
  { $id: 'Registry', title: 'Registry' },
)

export const PlatformSchema = Type.Object({
  digest: Type.String(),
  os: Type.Optional(Type.String()),
  architecture: Type.Optional(Type.String()),
  variant: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer()),
  created: Type.Optional(Type.String()),
})

export const TagSchema = Type.Object(
  {
    name: Type.String(),
    digest: Type.String(),
    mediaType: Type.String(),
    kind: Type.Union([
      Type.Literal('image'),
      Type.Literal('index'),
      Type.Literal('legacy'),
      Type.Literal('unknown'),
    ]),
    size: Type.Optional(Type.Integer({ description: 'Config + layers; for an index every distinct blob' })),
    created: Type.Optional(Type.String({ description: 'From the image config' })),
    platforms: Type.Optional(Type.Array(PlatformSchema)),
    sharedWith: Type.Array(Type.String(), { description: 'Other tags pointing at the same digest' }),
    inUse: Type.Optional(
      Type.Object(
        {
          status: Type.Union([Type.Literal('in-use'), Type.Literal('unknown')]),
          reason: Type.String({ description: 'One line: "running in prod/payments deploy/api, 3 pods"' }),
        },
        {
          description:
            'Present when something runs or names the image (its digest, or this tag), or when usage cannot be told',
        },
      ),
    ),
  },
  { $id: 'Tag', title: 'Tag' },
)

export const TagPageSchema = Type.Object({
  items: Type.Array(Type.Ref('Tag')),
  nextCursor: Nullable(Type.String()),
  sharedWithComplete: Type.Boolean({
    description: 'false when the repository has more tags than browse.siblingScanLimit',
  }),
  dangling: Type.Array(Type.String(), {
    description:
      'Tags of this page the registry lists but that resolve to nothing (a delete that failed half-way inside the registry); untag removes them',
  }),
})

export const RepositoryPageSchema = Type.Object({
  items: Type.Array(Type.Object({ name: Type.String() })),
  nextCursor: Nullable(Type.String()),
})

const DescriptorSchema = Type.Object({
  digest: Type.String(),
  mediaType: Type.String(),
  size: Type.Integer(),
  artifactType: Type.Optional(Type.String()),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
})

export const ManifestViewSchema = Type.Object(
  {
    digest: Type.String(),
    mediaType: Type.String(),
    kind: Type.String(),
    size: Type.Integer({ description: 'Bytes of the manifest itself' }),
    totalSize: Nullable(Type.Integer()),
    annotations: Type.Record(Type.String(), Type.String()),
    subject: Nullable(DescriptorSchema),
    config: Nullable(
      Type.Object({
        digest: Type.String(),
        size: Type.Integer(),
        os: Type.Optional(Type.String()),
        architecture: Type.Optional(Type.String()),
        variant: Type.Optional(Type.String()),
        created: Type.Optional(Type.String()),
        author: Type.Optional(Type.String()),
        labels: Type.Record(Type.String(), Type.String()),
      }),
    ),
    layers: Type.Array(DescriptorSchema),
    history: Type.Array(
      Type.Object({
        created: Type.Optional(Type.String()),
        createdBy: Type.Optional(Type.String()),
        comment: Type.Optional(Type.String()),
        emptyLayer: Type.Boolean(),
        size: Type.Integer(),
        layerDigest: Type.Optional(Type.String()),
      }),
    ),
    children: Type.Array(
      Type.Intersect([DescriptorSchema, Type.Object({ platform: Nullable(PlatformSchema) })]),
    ),
    referrers: Nullable(Type.Object({ via: Type.String(), items: Type.Array(DescriptorSchema) })),
  },
  { $id: 'Manifest', title: 'Manifest' },
)
