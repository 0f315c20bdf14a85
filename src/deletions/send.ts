import { isRegistryError, type RegistryClient, type RegistryError } from '../oci/index.js'
import type { ItemResult, ItemRow } from './items-sql.js'
import { pushPlaceholder } from './placeholder.js'
import { ALREADY_DELETED, type Judgement, placeholderOf } from './verify.js'

/** Registry answers after which a DELETE may or may not have happened: look before deciding. */
const DOUBTFUL = new Set(['server_error', 'network'])
/** Registry answers that refused before acting: the item stays pending and the job retries. */
const RETRYABLE = new Set(['rate_limited', 'server_error', 'network'])

/**
 * Sends one item's DELETE and reads what it did. 202 for a digest delete is proof. After an answer
 * that leaves doubt (5xx, a lost connection) the repository is looked at again: gone cleanly is
 * deleted; still there stays pending for the retry; gone with its tags still listed is reported as
 * dangling, never as deleted. Returns undefined to leave the item pending (it throws then).
 */
export async function sendDelete(
  client: RegistryClient,
  item: ItemRow,
  judgement: Extract<Judgement, { send: true }>,
): Promise<ItemResult | undefined> {
  const sentBefore = item.delete_sent_at !== null
  try {
    const answer =
      item.action !== 'untag'
        ? await client.deleteManifest(item.repository, item.digest, { mediaType: item.media_type })
        : item.untag_method === 'tag-delete'
          ? await client.deleteTag(item.repository, item.tag!, { mediaType: item.media_type })
          : await untagByPlaceholder(client, item)
    if (answer.outcome === 'not_found') {
      // A first-ever attempt's 404 means the thing was never there; after a DELETE of ours was sent
      // (its marker committed), it is that DELETE's doing.
      return sentBefore
        ? ALREADY_DELETED
        : {
            state: 'failed',
            outcome: 'not_found',
            errorCode: 'REGENT_REGISTRY_NOT_FOUND',
            error: `${item.repository}: ${item.tag ?? item.digest} not found`,
          }
    }
    if (answer.outcome === 'delete_disabled') {
      return {
        state: 'failed',
        outcome: 'delete_disabled',
        errorCode: 'REGENT_REGISTRY_DELETE_DISABLED',
        error: `registry answered ${answer.status}${answer.ociCode ? ` ${answer.ociCode}` : ''}`,
      }
    }
    if (item.action !== 'untag' || item.untag_method !== 'placeholder')
      return { state: 'deleted', outcome: 'deleted' }
    // The placeholder's 202 says the placeholder is gone, not that the tag is: look.
    const looked = await confirm(client, item, judgement)
    if (looked) return looked
    throw new Error(`${item.repository}:${item.tag} still resolves after the registry accepted its untag`)
  } catch (err) {
    if (!isRegistryError(err)) throw err
    const outcome = (err as RegistryError).outcome ?? ''
    if (DOUBTFUL.has(outcome)) {
      const looked = await confirm(client, item, judgement).catch(() => undefined)
      if (looked) return looked
    }
    if (RETRYABLE.has(outcome)) throw err
    return { state: 'failed', outcome: outcome || 'error', errorCode: err.code, error: err.message }
  }
}

/**
 * Pushes the item's placeholder onto the tag (unless a crashed attempt already did) and deletes
 * it by digest: only the tag goes.
 */
async function untagByPlaceholder(client: RegistryClient, item: ItemRow) {
  const placeholder = placeholderOf(item)
  await pushPlaceholder(client, item.repository, item.tag!, placeholder)
  return client.deleteManifest(item.repository, placeholder.digest, { mediaType: placeholder.mediaType })
}

/**
 * Looks at what an item's DELETE left: a tag listing and a HEAD. Gone cleanly → deleted. The
 * manifest gone but a tag of it still listed → dangling (reported, never counted as deleted). Still
 * there → undefined (left pending; the caller rethrows for a retry).
 */
async function confirm(
  client: RegistryClient,
  item: ItemRow,
  judgement: Extract<Judgement, { send: true }>,
): Promise<ItemResult | undefined> {
  const reference = item.action === 'untag' ? item.tag! : item.digest
  const head = await client.headManifest(item.repository, reference)
  const ours =
    head && (item.action !== 'untag' || head.digest === item.digest || head.digest === judgement.placeholder)
  if (ours) return undefined
  // An untagged tag that resolves again was pushed anew by someone: our part is done.
  if (item.action === 'untag' && head) return { state: 'deleted', outcome: 'deleted' }
  const listed = new Set<string>()
  for await (const tag of client.tags(item.repository, { pageSize: 1000 })) listed.add(tag)
  const left: string[] = []
  for (const tag of judgement.vanishing) {
    if (!listed.has(tag)) continue
    // Listed: broken, unless it was pushed again onto another image since.
    if (item.action === 'untag' || !(await client.headManifest(item.repository, tag))) left.push(tag)
  }
  if (left.length > 0) {
    return {
      state: 'failed',
      outcome: 'dangling',
      errorCode: 'REGENT_DANGLING_TAG',
      error: `the registry failed half-way: ${left.map((t) => `${item.repository}:${t}`).join(', ')} still listed but resolving to nothing; untag ${left.length === 1 ? 'it' : 'them'} to remove ${left.length === 1 ? 'it' : 'them'}`,
    }
  }
  return { state: 'deleted', outcome: 'deleted' }
}
