import type { MercuriusContext } from 'mercurius'
import type { GraphqlModule } from '../graphql/plugin.js'
import type { BrowseService, TagView } from './browse-service.js'
import { encodeCursor } from './cursor.js'

/**
 * Registries as a graph: registries → repositories (connection) → tags (connection) → manifest.
 * Every field of a tag comes from the page the tags connection fetched in one call; a tag's manifest
 * goes through a loader, so a page of tags asks for each distinct digest once.
 */
const typeDefs = /* GraphQL */ `
  extend type Query {
    registries: [Registry!]!
    registry(name: String!): Registry!
  }
  type Registry {
    name: String!
    kind: String!
    url: String!
    health: String!
    capabilities: Capabilities
    repositories(first: Int = 100, after: String, prefix: String): RepositoryConnection!
    repository(name: String!): Repository!
  }
  type Capabilities {
    probedAt: String!
    authKind: String
    catalog: Boolean
    deleteEnabled: Boolean
    tagDelete: Boolean
    referrersApi: Boolean
    notes: [String!]!
  }
  type RepositoryConnection {
    edges: [RepositoryEdge!]!
    nodes: [Repository!]!
    pageInfo: PageInfo!
  }
  type RepositoryEdge {
    cursor: String!
    node: Repository!
  }
  type Repository {
    registry: String!
    name: String!
    tags(first: Int = 100, after: String): TagConnection!
    manifest(reference: String!): Manifest!
  }
  type TagConnection {
    edges: [TagEdge!]!
    nodes: [Tag!]!
    pageInfo: PageInfo!
    "false when the repository has more tags than browse.siblingScanLimit"
    sharedWithComplete: Boolean!
    "Tags of this page the registry lists but that resolve to nothing; untag removes them"
    dangling: [String!]!
  }
  type TagEdge {
    cursor: String!
    node: Tag!
  }
  type Tag {
    name: String!
    digest: String!
    mediaType: String!
    kind: String!
    size: Float
    created: String
    platforms: [Platform!]
    sharedWith: [String!]!
    "Set when something runs or names the image (or usage cannot be told)"
    inUse: TagUsage
    manifest: Manifest!
  }
  type TagUsage {
    status: String!
    reason: String!
  }
  type Platform {
    digest: String!
    os: String
    architecture: String
    variant: String
    size: Float
    created: String
  }
  type Descriptor {
    digest: String!
    mediaType: String!
    size: Float!
    artifactType: String
  }
  type ImageConfig {
    digest: String!
    size: Float!
    os: String
    architecture: String
    variant: String
    created: String
    author: String
    labels: [Label!]!
  }
  type Label {
    name: String!
    value: String!
  }
  type HistoryEntry {
    created: String
    createdBy: String
    comment: String
    emptyLayer: Boolean!
    size: Float!
    layerDigest: String
  }
  type IndexChild {
    digest: String!
    mediaType: String!
    size: Float!
    platform: Platform
  }
  type Referrers {
    via: String!
    items: [Descriptor!]!
  }
  type Manifest {
    digest: String!
    mediaType: String!
    kind: String!
    size: Float!
    totalSize: Float
    config: ImageConfig
    layers: [Descriptor!]!
    history: [HistoryEntry!]!
    children: [IndexChild!]!
    referrers: Referrers
    subject: Descriptor
  }
`

interface RegistryNode {
  name: string
}
interface RepositoryNode {
  registry: string
  name: string
}
interface TagNode extends TagView {
  registry: string
  repository: string
}

const connection = <T>(items: T[], nextCursor: string | null, cursorOf: (item: T) => string) => ({
  edges: items.map((node) => ({ cursor: cursorOf(node), node })),
  nodes: items,
  pageInfo: { hasNextPage: nextCursor !== null, endCursor: nextCursor },
})

export function registriesGraphql(browse: () => BrowseService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        registries: (_root: unknown, _args: unknown, ctx: MercuriusContext) =>
          browse().listRegistries(ctx.principal),
        registry: async (_root: unknown, args: { name: string }, ctx: MercuriusContext) => {
          const all = await browse().listRegistries(ctx.principal)
          const found = all.find((r) => r.name === args.name)
          // Resolving through the service keeps the 404 code identical to REST's.
          if (!found) await browse().listRepositories(ctx.principal, args.name, { limit: 1 }, ctx.signal)
          return found
        },
      },
      Registry: {
        repositories: async (
          registry: RegistryNode,
          args: { first: number; after?: string; prefix?: string },
          ctx: MercuriusContext,
        ) => {
          const page = await browse().listRepositories(
            ctx.principal,
            registry.name,
            {
              limit: clampFirst(args.first),
              ...(args.after ? { cursor: args.after } : {}),
              ...(args.prefix ? { prefix: args.prefix } : {}),
            },
            ctx.signal,
          )
          const nodes = page.items.map((r) => ({ registry: registry.name, name: r.name }))
          return connection(nodes, page.nextCursor, (n) => encodeCursor({ last: n.name }))
        },
        repository: (registry: RegistryNode, args: { name: string }) => ({
          registry: registry.name,
          name: args.name,
        }),
      },
      Repository: {
        tags: async (
          repo: RepositoryNode,
          args: { first: number; after?: string },
          ctx: MercuriusContext,
        ) => {
          const page = await browse().listTags(
            ctx.principal,
            repo.registry,
            repo.name,
            { limit: clampFirst(args.first), ...(args.after ? { cursor: args.after } : {}) },
            ctx.signal,
          )
          const nodes: TagNode[] = page.items.map((tag) => ({
            ...tag,
            registry: repo.registry,
            repository: repo.name,
          }))
          return {
            ...connection(nodes, page.nextCursor, (n) => encodeCursor({ last: n.name })),
            sharedWithComplete: page.sharedWithComplete,
            dangling: page.dangling,
          }
        },
        manifest: (repo: RepositoryNode, args: { reference: string }, ctx: MercuriusContext) =>
          browse()
            .getManifest(ctx.principal, repo.registry, repo.name, args.reference, ctx.signal)
            .then(manifestNode),
      },
    },
    loaders: {
      Tag: {
        // One call per distinct digest of the page, answered in the order asked (mercurius requires it).
        manifest: async (queries: { obj: TagNode }[], ctx: MercuriusContext) => {
          const distinct = new Map<string, Promise<ReturnType<typeof manifestNode>>>()
          return Promise.all(
            queries.map(({ obj }) => {
              const key = `${obj.registry}\u0000${obj.repository}\u0000${obj.digest}`
              let pending = distinct.get(key)
              if (!pending) {
                pending = browse()
                  .getManifest(ctx.principal, obj.registry, obj.repository, obj.digest, ctx.signal)
                  .then(manifestNode)
                distinct.set(key, pending)
              }
              return pending
            }),
          )
        },
      },
    },
  }
}

function clampFirst(first: number): number {
  return Math.max(1, Math.min(1000, first))
}

type ManifestView = Awaited<ReturnType<BrowseService['getManifest']>>

function manifestNode(view: ManifestView) {
  return {
    ...view,
    config: view.config
      ? {
          ...view.config,
          labels: Object.entries(view.config.labels).map(([name, value]) => ({ name, value })),
        }
      : null,
  }
}
