import { readFile } from 'node:fs/promises'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import { Agent, request } from 'undici'
import type { InventorySourceConfig } from './config-schema.js'
import type { ReferenceCollector } from './references.js'

/**
 * The `inventory` source: an HTTP(S) URL answering a JSON document of the images something runs
 * (ECS services, Nomad jobs, VMs, a deploy tool's records), for what no Kubernetes API describes.
 * The document (docs/usage.md, "The `inventory` source"):
 *
 *   { "images": [ { "image": "registry.example.com/payments/api:1.4",
 *                   "cluster": "ecs-prod", "namespace": "payments", "kind": "service",
 *                   "name": "api", "container": "app" } ] }
 *
 * Only `image` is required. An image naming a digest counts for that digest, one naming only a tag
 * for that tag. A document that does not have this shape fails the sync (nothing changes).
 */

const Text = (max: number) => Type.String({ maxLength: max })

export const InventoryDocumentSchema = Type.Object({
  images: Type.Array(
    Type.Object({
      image: Type.String({ minLength: 1, maxLength: 1024 }),
      cluster: Type.Optional(Text(253)),
      namespace: Type.Optional(Text(253)),
      kind: Type.Optional(Text(100)),
      name: Type.Optional(Text(253)),
      container: Type.Optional(Text(253)),
    }),
  ),
})

export class InventoryError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InventoryError'
  }
}

export async function collectInventory(
  source: { name: string; inventory: InventorySourceConfig },
  env: Record<string, string | undefined>,
  collector: ReferenceCollector,
  signal?: AbortSignal,
): Promise<{ images: number }> {
  const config = source.inventory
  const token = config.tokenEnv ? env[config.tokenEnv] : undefined
  if (config.tokenEnv && !token)
    throw new InventoryError(`the environment variable ${config.tokenEnv} is not set`)
  // undici follows no redirects: the token goes to the configured URL only.
  const dispatcher = new Agent({
    connect: {
      timeout: config.timeoutMs,
      ...(config.caFile ? { ca: await readFile(config.caFile, 'utf8') } : {}),
    },
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.timeoutMs,
  })
  try {
    const res = await request(config.url, {
      method: 'GET',
      dispatcher,
      headers: {
        accept: 'application/json',
        'user-agent': 'regent/usage',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(signal ? { signal } : {}),
    }).catch((err: Error) => {
      throw new InventoryError(`GET ${redact(config.url)}: ${err.message}`)
    })
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {})
      throw new InventoryError(`GET ${redact(config.url)}: ${res.statusCode}`)
    }
    const text = await readLimited(res.body, config.maxBytes)
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      throw new InventoryError(`GET ${redact(config.url)}: the answer is not JSON`)
    }
    if (!Value.Check(InventoryDocumentSchema, doc)) {
      const first = [...Value.Errors(InventoryDocumentSchema, doc)][0]
      throw new InventoryError(
        `GET ${redact(config.url)}: not an inventory document: ${first?.instancePath || '(root)'} ${first?.message ?? ''}`.trim(),
      )
    }
    for (const entry of doc.images) {
      collector.addImage(entry.image, {
        cluster: entry.cluster ?? source.name,
        namespace: entry.namespace ?? '',
        kind: entry.kind ?? 'inventory',
        name: entry.name ?? entry.image,
        container: entry.container ?? '',
      })
    }
    return { images: doc.images.length }
  } finally {
    await dispatcher.close()
  }
}

async function readLimited(
  body: AsyncIterable<Buffer> & { destroy(): void },
  maxBytes: number,
): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > maxBytes) {
      body.destroy()
      throw new InventoryError(`the inventory document is larger than ${maxBytes} bytes (inventory.maxBytes)`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Query strings may carry secrets; errors name the URL without them. */
function redact(url: string): string {
  const parsed = new URL(url)
  parsed.search = ''
  parsed.username = ''
  parsed.password = ''
  return parsed.toString()
}
