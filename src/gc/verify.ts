import { setTimeout as sleep } from 'node:timers/promises'
import { isRegistryError, type RegistryClient } from '../oci/index.js'
import { mapLimit } from '../registries/map-limit.js'

/**
 * The protocol's last step: after a GC, every remaining tag (or a random sample) must still be whole: its
 * manifest answers, every index child answers, and every config and layer blob answers HEAD 200.
 * A GC that raced a push (distribution #3045) or deleted untagged index children (#3004) shows up
 * here as a blob or child that is gone.
 */
export interface VerifyResult {
  repositories: number
  tags: number
  tagsChecked: number
  manifestsChecked: number
  blobsChecked: number
  problems: string[]
}

const MAX_PROBLEMS = 50
const CONCURRENCY = 8

export async function verifyRegistry(
  client: RegistryClient,
  sample: 'all' | number,
  signal?: AbortSignal,
): Promise<VerifyResult> {
  const pairs: { repository: string; tag: string }[] = []
  let repositories = 0
  for await (const repository of client.catalog()) {
    repositories++
    for (const tag of await tagsOf(client, repository)) pairs.push({ repository, tag })
    signal?.throwIfAborted()
  }
  const chosen = sample === 'all' || sample >= pairs.length ? pairs : pick(pairs, sample)
  const result: VerifyResult = {
    repositories,
    tags: pairs.length,
    tagsChecked: chosen.length,
    manifestsChecked: 0,
    blobsChecked: 0,
    problems: [],
  }
  const seen = new Set<string>()
  const problem = (text: string) => {
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(text)
  }

  const checkManifest = async (repository: string, reference: string, label: string): Promise<void> => {
    const key = `${repository}@${reference}`
    if (seen.has(key)) return
    seen.add(key)
    signal?.throwIfAborted()
    const head = await client.headManifest(repository, reference)
    result.manifestsChecked++
    if (!head) return problem(`${label}: manifest ${reference} is gone`)
    const fetched = await client.getManifest(repository, head.digest)
    const manifest = fetched.manifest
    if (manifest.kind === 'index') {
      for (const child of manifest.manifests) {
        await checkManifest(repository, child.digest, `${label} (child ${child.digest})`)
      }
    } else if (manifest.kind === 'image') {
      for (const blob of [manifest.config, ...manifest.layers]) {
        // Foreign layers (`urls`) live elsewhere by design.
        if (blob.urls && blob.urls.length > 0) continue
        const blobKey = `${repository}@${blob.digest}`
        if (seen.has(blobKey)) continue
        seen.add(blobKey)
        result.blobsChecked++
        if (!(await client.headBlob(repository, blob.digest)))
          problem(`${label}: blob ${blob.digest} is gone`)
      }
    }
  }

  await mapLimit(chosen, CONCURRENCY, async ({ repository, tag }) => {
    try {
      await checkManifest(repository, tag, `${repository}:${tag}`)
    } catch (err) {
      if (signal?.aborted) throw err
      problem(`${repository}:${tag}: ${(err as Error).message}`)
    }
  })
  return result
}

async function tagsOf(client: RegistryClient, repository: string): Promise<string[]> {
  const tags: string[] = []
  try {
    for await (const tag of client.tags(repository)) tags.push(tag)
  } catch (err) {
    // A repository whose last tag went is still in the catalog (distribution #1585).
    if (isRegistryError(err) && err.outcome === 'not_found') return []
    throw err
  }
  return tags
}

/** A uniform random sample of n items (partial Fisher–Yates). */
function pick<T>(items: T[], n: number): T[] {
  const copy = [...items]
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy.slice(0, n)
}

/** Waits until the registry answers `/v2/` again (an `after` command restarted it). */
export async function waitUntilServing(client: RegistryClient, timeoutMs: number, signal?: AbortSignal) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await client.ping()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(250, undefined, signal ? { signal } : undefined)
    }
  }
}
