import { execFile } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'

/**
 * Rendering a kustomization: `kubectl kustomize` where kubectl is installed, and a small renderer
 * of the subset of kustomize the manifests in deploy/kubernetes use where it is not. The subset:
 * `resources` (files and folders with their own kustomization), `namespace`, `images` (newName,
 * newTag, digest) and `patches` holding JSON 6902 operations (add, replace, remove) for a target
 * kind and name. Anything else is refused by name, so a manifest using more fails loudly rather
 * than being rendered wrong. Where kubectl exists the tests compare both renderings.
 */

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, read and patched field by field
export type Yaml = any

export type K8sObject = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown }
  [key: string]: unknown
}

const execFileAsync = promisify(execFile)

export function parseManifests(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]?.message}`)
      return doc.toJS() as K8sObject | null
    })
    .filter((o): o is K8sObject => o !== null)
}

export async function kubectlKustomize(dir: string): Promise<K8sObject[] | undefined> {
  try {
    const { stdout } = await execFileAsync('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 })
    return parseManifests(stdout, `kubectl kustomize ${dir}`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'patches'])

/** Kinds without a namespace: the namespace transformer leaves them alone. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
  'StorageClass',
  'PersistentVolume',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
])

interface Kustomization {
  resources?: string[]
  namespace?: string
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[]
  patches?: { target: { kind?: string; name?: string }; patch: string }[]
}

export function renderKustomization(dir: string): K8sObject[] {
  const file = path.join(dir, 'kustomization.yaml')
  const spec = parseManifests(readFileSync(file, 'utf8'), file)[0] as unknown as Kustomization
  const unknown = Object.keys(spec).filter((key) => !KNOWN_KEYS.has(key))
  if (unknown.length > 0)
    throw new Error(`${file}: the fallback renderer does not implement ${unknown.join(', ')}`)

  let objects: K8sObject[] = []
  for (const resource of spec.resources ?? []) {
    const full = path.resolve(dir, resource)
    objects.push(
      ...(statSync(full).isDirectory()
        ? renderKustomization(full)
        : parseManifests(readFileSync(full, 'utf8'), full)),
    )
  }
  objects = structuredClone(objects)
  if (spec.namespace) {
    for (const object of objects) {
      if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = spec.namespace
      for (const subject of (object.subjects as { kind: string; namespace?: string }[] | undefined) ?? []) {
        if (subject.kind === 'ServiceAccount') subject.namespace = spec.namespace
      }
    }
  }
  for (const image of spec.images ?? []) {
    for (const container of objects.flatMap(containersOf)) {
      const { name, tag } = splitImage(container.image)
      if (name !== image.name) continue
      const newName = image.newName ?? name
      container.image = image.digest
        ? `${newName}@${image.digest}`
        : `${newName}${image.newTag ? `:${image.newTag}` : tag}`
    }
  }
  for (const { target, patch } of spec.patches ?? []) {
    const operations = parseManifests(patch, `${file} patch`)[0] as unknown
    if (!Array.isArray(operations)) throw new Error(`${file}: only JSON 6902 patches are implemented`)
    const targets = objects.filter(
      (o) => (!target.kind || o.kind === target.kind) && (!target.name || o.metadata.name === target.name),
    )
    if (targets.length === 0) throw new Error(`${file}: a patch matches nothing (${JSON.stringify(target)})`)
    for (const object of targets) for (const op of operations) applyOperation(object, op)
  }
  return objects
}

/** The containers (and init containers) of a Deployment, Job, … or bare Pod. */
export function containersOf(object: K8sObject): { name: string; image: string; [key: string]: unknown }[] {
  const spec = object.spec as Yaml
  const pod = object.kind === 'Pod' ? spec : (spec?.jobTemplate?.spec?.template?.spec ?? spec?.template?.spec)
  return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]
}

function splitImage(image: string): { name: string; tag: string } {
  const at = image.indexOf('@')
  if (at >= 0) return { name: image.slice(0, at), tag: image.slice(at) }
  const colon = image.lastIndexOf(':')
  return colon > image.lastIndexOf('/')
    ? { name: image.slice(0, colon), tag: image.slice(colon) }
    : { name: image, tag: '' }
}

function applyOperation(object: K8sObject, op: { op: string; path: string; value?: unknown }): void {
  const segments = op.path
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
  const last = segments.pop()
  if (last === undefined) throw new Error(`bad patch path ${op.path}`)
  let parent: Yaml = object
  for (const segment of segments) {
    parent = Array.isArray(parent) ? parent[Number(segment)] : parent?.[segment]
    if (parent === undefined)
      throw new Error(`patch path ${op.path} does not exist in ${object.metadata.name}`)
  }
  if (op.op === 'add' && Array.isArray(parent)) {
    if (last === '-') parent.push(op.value)
    else parent.splice(Number(last), 0, op.value)
  } else if (op.op === 'add' || op.op === 'replace') {
    if (op.op === 'replace' && !(last in parent)) throw new Error(`patch replaces a missing ${op.path}`)
    if (Array.isArray(parent)) parent[Number(last)] = op.value
    else parent[last] = op.value
  } else if (op.op === 'remove') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1)
    else delete parent[last]
  } else {
    throw new Error(`the fallback renderer does not implement the "${op.op}" operation`)
  }
}
