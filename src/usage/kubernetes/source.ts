import type { InClusterConfig, KubernetesSourceConfig } from '../config-schema.js'
import { parseImageId } from '../image-reference.js'
import type { Location, ReferenceCollector } from '../references.js'
import { KubernetesClient } from './client.js'
import { resolveConnection } from './connection.js'

/**
 * What one cluster runs and may run: pods (every container, init and ephemeral ones too, with the
 * digest each runs from `status.*ContainerStatuses[].imageID`), and the pod templates of
 * Deployments, StatefulSets, DaemonSets, ReplicaSets (those a Deployment keeps for rollback
 * included, at any replica count), Jobs and CronJobs. A workload scaled to zero runs nothing but
 * pulls its image again the moment it scales up, so its template counts.
 *
 * Shapes follow the Kubernetes API reference (core/v1, apps/v1, batch/v1).
 */

interface ObjectMeta {
  name?: string
  namespace?: string
  ownerReferences?: { kind?: string; name?: string; controller?: boolean }[]
}
interface Container {
  name?: string
  image?: string
}
interface ContainerStatus {
  name?: string
  image?: string
  imageID?: string
}
interface PodSpec {
  containers?: Container[]
  initContainers?: Container[]
  ephemeralContainers?: Container[]
}
interface Pod {
  metadata?: ObjectMeta
  spec?: PodSpec
  status?: {
    containerStatuses?: ContainerStatus[]
    initContainerStatuses?: ContainerStatus[]
    ephemeralContainerStatuses?: ContainerStatus[]
  }
}
interface Workload {
  metadata?: ObjectMeta
  spec?: {
    template?: { spec?: PodSpec }
    jobTemplate?: { spec?: { template?: { spec?: PodSpec } } }
  }
}

/** What is kept of an object: its name, owner and containers' images. */
interface Compact {
  name: string
  namespace: string
  owner: { kind: string; name: string } | undefined
  containers: { name: string; image: string | undefined; imageID: string | undefined }[]
}

function compact(kind: string, object: Pod & Workload): Compact {
  const spec =
    kind === 'CronJob'
      ? object.spec?.jobTemplate?.spec?.template?.spec
      : kind === 'Pod'
        ? (object.spec as PodSpec | undefined)
        : object.spec?.template?.spec
  const statuses = new Map<string, ContainerStatus>()
  if (kind === 'Pod')
    for (const status of [
      ...(object.status?.initContainerStatuses ?? []),
      ...(object.status?.containerStatuses ?? []),
      ...(object.status?.ephemeralContainerStatuses ?? []),
    ])
      if (status.name) statuses.set(status.name, status)
  return {
    name: object.metadata?.name ?? '',
    namespace: object.metadata?.namespace ?? '',
    owner: controllerOf(object.metadata),
    containers: [
      ...(spec?.initContainers ?? []),
      ...(spec?.containers ?? []),
      ...(spec?.ephemeralContainers ?? []),
    ].map((c) => ({
      name: c.name ?? '',
      image: c.image,
      imageID: c.name ? statuses.get(c.name)?.imageID : undefined,
    })),
  }
}

/** The resources read, with their list paths; the ClusterRole grants exactly these. */
export const KUBERNETES_RESOURCES = [
  { kind: 'ReplicaSet', group: '/apis/apps/v1', plural: 'replicasets' },
  { kind: 'Job', group: '/apis/batch/v1', plural: 'jobs' },
  { kind: 'Deployment', group: '/apis/apps/v1', plural: 'deployments' },
  { kind: 'StatefulSet', group: '/apis/apps/v1', plural: 'statefulsets' },
  { kind: 'DaemonSet', group: '/apis/apps/v1', plural: 'daemonsets' },
  { kind: 'CronJob', group: '/apis/batch/v1', plural: 'cronjobs' },
  { kind: 'Pod', group: '/api/v1', plural: 'pods' },
] as const

export interface KubernetesSyncCounts {
  pods: number
  workloads: number
  pages: number
  restarts: number
}

export async function collectKubernetes(
  source: { name: string; kubernetes: KubernetesSourceConfig },
  inCluster: InClusterConfig,
  collector: ReferenceCollector,
  signal?: AbortSignal,
): Promise<KubernetesSyncCounts> {
  const config = source.kubernetes
  const cluster = config.cluster ?? source.name
  const connection = await resolveConnection(config, inCluster)
  const client = new KubernetesClient(connection, {
    timeoutMs: config.timeoutMs,
    pageSize: config.pageSize,
    ...(signal ? { signal } : {}),
  })
  const counts: KubernetesSyncCounts = { pods: 0, workloads: 0, pages: 0, restarts: 0 }
  // Owners of ReplicaSets and Jobs (namespace/name → Deployment api, CronJob nightly), so that pods
  // are reported by the workload people know.
  const owners = new Map<string, { kind: string; name: string }>()
  const paths = (plural: string, group: string) =>
    config.namespaces.length === 0
      ? [`${group}/${plural}`]
      : config.namespaces.map((ns) => `${group}/namespaces/${ns}/${plural}`)
  try {
    for (const resource of KUBERNETES_RESOURCES) {
      for (const listPath of paths(resource.plural, resource.group)) {
        // Pages are reduced to their images as they arrive: 10,000 pods are never held whole.
        const objects = await client.list(listPath, (item) => [
          compact(resource.kind, item as Pod & Workload),
        ])
        for (const object of objects) {
          if (resource.kind === 'Pod') takePod(object, cluster, owners, collector)
          else takeWorkload(resource.kind, object, cluster, owners, collector)
        }
        if (resource.kind === 'Pod') counts.pods += objects.length
        else counts.workloads += objects.length
      }
    }
  } finally {
    await client.close()
  }
  return { ...counts, ...client.listStats }
}

function controllerOf(meta: ObjectMeta | undefined): { kind: string; name: string } | undefined {
  const owner = meta?.ownerReferences?.find((o) => o.controller) ?? meta?.ownerReferences?.[0]
  return owner?.kind && owner.name ? { kind: owner.kind, name: owner.name } : undefined
}

function takeWorkload(
  kind: string,
  workload: Compact,
  cluster: string,
  owners: Map<string, { kind: string; name: string }>,
  collector: ReferenceCollector,
): void {
  const { name, namespace, owner } = workload
  if (owner && (kind === 'ReplicaSet' || kind === 'Job')) owners.set(`${kind}/${namespace}/${name}`, owner)
  for (const container of workload.containers) {
    if (!container.image) continue
    collector.addImage(container.image, {
      cluster,
      namespace,
      kind,
      name,
      container: container.name,
      ownerKind: owner?.kind ?? null,
      ownerName: owner?.name ?? null,
    })
  }
}

function takePod(
  pod: Compact,
  cluster: string,
  owners: Map<string, { kind: string; name: string }>,
  collector: ReferenceCollector,
): void {
  // A pod of a ReplicaSet belongs to its Deployment, a pod of a Job to its CronJob, if any.
  let owner = pod.owner
  const above = owner ? owners.get(`${owner.kind}/${pod.namespace}/${owner.name}`) : undefined
  if (above) owner = above
  for (const container of pod.containers) {
    // A workload's pods are reported at the workload ("deploy/api, 3 pods"); a bare pod as itself.
    const at: Location = {
      cluster,
      namespace: pod.namespace,
      kind: owner?.kind ?? 'Pod',
      name: owner?.name ?? pod.name,
      container: container.name,
      pod: pod.name,
    }
    const spec = container.image ? collector.addImage(container.image, at) : undefined
    const running = container.imageID ? parseImageId(container.imageID) : undefined
    if (!running) continue
    // The repository: the imageID's when it names one Regent fronts, else the one the spec names
    // (a bare `sha256:` id names none; a mirror's name may not be configured).
    const repositoryRef =
      running.reference && collector.registryOf(running.reference)
        ? running.reference
        : (spec ?? running.reference)
    if (repositoryRef) collector.addRunning(repositoryRef, running.digest, at)
  }
}
