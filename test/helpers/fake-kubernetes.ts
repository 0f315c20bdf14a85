import { randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import path from 'node:path'
import { selfSignedCertificate } from './certificates.js'

/**
 * A small Kubernetes API server for tests, since none can run here. It serves the list endpoints
 * Regent reads, shaped as the API reference describes them (checked against kubernetes/api
 * v0.37, i.e. Kubernetes 1.37: core/v1, apps/v1, batch/v1; every field used is unchanged since
 * 1.25, when ephemeral containers became GA, and batch/v1 CronJob exists since 1.21):
 *
 * - `GET /api/v1/pods`, `/apis/apps/v1/{deployments,statefulsets,daemonsets,replicasets}`,
 *   `/apis/batch/v1/{jobs,cronjobs}`, and each under `/namespaces/{ns}/`;
 * - `PodList`, `DeploymentList`… with `apiVersion`, `metadata.resourceVersion`, and, while more
 *   remains, `metadata.continue` and `metadata.remainingItemCount`; items without kind/apiVersion;
 * - `limit`/`continue` paging over a snapshot taken when the list starts, as the API server reads
 *   all pages at one etcd revision; changes made meanwhile show only in a list started afterwards;
 * - a continue token whose snapshot is gone (`expireContinueTokens()`, or `failContinues`) is
 *   answered 410 Gone with the `Status` object of reason `Expired` the API server sends;
 * - a bearer token is required: anything else is 401 with an `Unauthorized` Status.
 * `down = true` makes it stop answering (connections are reset), as a dead API server would.
 */

export type ResourceKind =
  | 'Pod'
  | 'Deployment'
  | 'StatefulSet'
  | 'DaemonSet'
  | 'ReplicaSet'
  | 'Job'
  | 'CronJob'

const RESOURCES: Record<string, { kind: ResourceKind; apiVersion: string; prefix: string }> = {
  pods: { kind: 'Pod', apiVersion: 'v1', prefix: '/api/v1' },
  deployments: { kind: 'Deployment', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  statefulsets: { kind: 'StatefulSet', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  daemonsets: { kind: 'DaemonSet', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  replicasets: { kind: 'ReplicaSet', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  jobs: { kind: 'Job', apiVersion: 'batch/v1', prefix: '/apis/batch/v1' },
  cronjobs: { kind: 'CronJob', apiVersion: 'batch/v1', prefix: '/apis/batch/v1' },
}

type KubeObject = { metadata: { name: string; namespace: string } } & Record<string, unknown>

export interface FakeKubernetes {
  url: string
  token: string
  /** With `tls`: the PEM certificate the server presents (self-signed for 127.0.0.1), to trust. */
  caPem?: string
  /** Objects served, by kind; replace or push, then list again. */
  objects: Record<ResourceKind, KubeObject[]>
  /** Every request: path and query. */
  requests: { path: string; query: Record<string, string> }[]
  /** Reset every connection instead of answering. */
  down: boolean
  /** The next N requests carrying a continue token are answered 410 Expired (their snapshot dropped). */
  failContinues: number
  /** Drops every list snapshot: continue tokens handed out so far expire. */
  expireContinueTokens(): void
  /** Writes a kubeconfig for this server (token auth) and returns its path. */
  kubeconfig(dir: string, options?: { context?: string; token?: string }): string
  close(): Promise<void>
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

const EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'

export async function startFakeKubernetes(
  options: { token?: string; tls?: boolean } = {},
): Promise<FakeKubernetes> {
  const token = options.token ?? randomBytes(16).toString('hex')
  const snapshots = new Map<string, KubeObject[]>()
  const sockets = new Set<Socket>()
  let revision = 1000
  const fake: FakeKubernetes = {
    url: '',
    token,
    objects: {
      Pod: [],
      Deployment: [],
      StatefulSet: [],
      DaemonSet: [],
      ReplicaSet: [],
      Job: [],
      CronJob: [],
    },
    requests: [],
    down: false,
    failContinues: 0,
    expireContinueTokens: () => snapshots.clear(),
    kubeconfig: (dir, opts = {}) => {
      const file = path.join(dir, `kubeconfig-${randomBytes(4).toString('hex')}`)
      const context = opts.context ?? 'fake'
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          `current-context: ${context}`,
          'clusters:',
          `  - name: fake-cluster`,
          `    cluster: { server: "${fake.url}" }`,
          'users:',
          `  - name: fake-user`,
          `    user: { token: "${opts.token ?? token}" }`,
          'contexts:',
          `  - name: ${context}`,
          `    context: { cluster: fake-cluster, user: fake-user }`,
          '',
        ].join('\n'),
      )
      return file
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }

  const send = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (fake.down) {
      req.socket.destroy()
      return
    }
    const url = new URL(req.url ?? '/', 'http://fake')
    const query = Object.fromEntries(url.searchParams)
    fake.requests.push({ path: url.pathname, query })
    if (req.headers.authorization !== `Bearer ${token}`) {
      send(res, 401, status(401, 'Unauthorized', 'Unauthorized'))
      return
    }
    const match = /^(\/api\/v1|\/apis\/apps\/v1|\/apis\/batch\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)$/.exec(
      url.pathname,
    )
    const resource = match ? RESOURCES[match[3] as string] : undefined
    if (!match || !resource || resource.prefix !== match[1] || req.method !== 'GET') {
      send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'))
      return
    }
    const namespace = match[2]
    const limit = query.limit ? Number(query.limit) : 0
    let items: KubeObject[]
    let offset = 0
    let snapshotId: string
    if (query.continue) {
      const decoded = JSON.parse(Buffer.from(query.continue, 'base64').toString('utf8')) as {
        snapshot: string
        offset: number
      }
      if (fake.failContinues > 0) {
        fake.failContinues--
        snapshots.delete(decoded.snapshot)
      }
      const snapshot = snapshots.get(decoded.snapshot)
      if (!snapshot) {
        send(res, 410, status(410, 'Expired', EXPIRED_MESSAGE))
        return
      }
      items = snapshot
      offset = decoded.offset
      snapshotId = decoded.snapshot
    } else {
      revision++
      items = structuredClone(
        fake.objects[resource.kind].filter((o) => !namespace || o.metadata.namespace === namespace),
      )
      snapshotId = `${revision}-${randomUUID()}`
      snapshots.set(snapshotId, items)
    }
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset)
    const next = offset + page.length
    const metadata: Record<string, unknown> = { resourceVersion: snapshotId.split('-')[0] }
    if (next < items.length) {
      metadata.continue = Buffer.from(JSON.stringify({ snapshot: snapshotId, offset: next })).toString(
        'base64',
      )
      metadata.remainingItemCount = items.length - next
    } else {
      snapshots.delete(snapshotId)
    }
    send(res, 200, { kind: `${resource.kind}List`, apiVersion: resource.apiVersion, metadata, items: page })
  }

  const tls = options.tls ? await selfSignedCertificate('/CN=fake-kubernetes', 'IP:127.0.0.1') : undefined
  const server = tls ? createTlsServer(tls, handle) : createServer(handle)
  if (tls) fake.caPem = tls.cert
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
  return fake
}

// Builders of objects as the API returns them (the fields Regent reads, plus the usual others).

export interface ContainerSpec {
  name: string
  image: string
  /** status imageID: `docker-pullable://…@sha256:…`, `repo@sha256:…` or a bare `sha256:…` */
  imageID?: string
}

function meta(namespace: string, name: string, owner?: { kind: string; name: string; apiVersion?: string }) {
  return {
    name,
    namespace,
    uid: randomUUID(),
    resourceVersion: String(Math.floor(Math.random() * 1e6)),
    creationTimestamp: '2026-11-01T10:00:00Z',
    labels: { app: name },
    ...(owner
      ? {
          ownerReferences: [
            {
              apiVersion:
                owner.apiVersion ??
                (owner.kind === 'Job' || owner.kind === 'CronJob' ? 'batch/v1' : 'apps/v1'),
              kind: owner.kind,
              name: owner.name,
              uid: randomUUID(),
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        }
      : {}),
  }
}

const specContainer = (c: ContainerSpec) => ({
  name: c.name,
  image: c.image,
  imagePullPolicy: 'IfNotPresent',
  resources: {},
  terminationMessagePath: '/dev/termination-log',
  terminationMessagePolicy: 'File',
})

function containerStatus(c: ContainerSpec, state: 'running' | 'terminated') {
  return {
    name: c.name,
    image: c.image,
    imageID: c.imageID ?? '',
    ready: state === 'running',
    restartCount: 0,
    started: state === 'running',
    state:
      state === 'running'
        ? { running: { startedAt: '2026-11-01T10:00:05Z' } }
        : {
            terminated: {
              exitCode: 0,
              reason: 'Completed',
              startedAt: '2026-11-01T10:00:01Z',
              finishedAt: '2026-11-01T10:00:04Z',
            },
          },
    containerID: `containerd://${randomBytes(32).toString('hex')}`,
  }
}

export function pod(input: {
  namespace: string
  name: string
  containers: ContainerSpec[]
  initContainers?: ContainerSpec[]
  ephemeralContainers?: ContainerSpec[]
  owner?: { kind: string; name: string }
}): KubeObject {
  return {
    metadata: meta(input.namespace, input.name, input.owner),
    spec: {
      containers: input.containers.map(specContainer),
      ...(input.initContainers ? { initContainers: input.initContainers.map(specContainer) } : {}),
      ...(input.ephemeralContainers
        ? {
            ephemeralContainers: input.ephemeralContainers.map((c) => ({
              ...specContainer(c),
              targetContainerName: input.containers[0]?.name,
            })),
          }
        : {}),
      restartPolicy: 'Always',
      nodeName: 'node-1',
      serviceAccountName: 'default',
    },
    status: {
      phase: 'Running',
      podIP: '10.0.0.10',
      startTime: '2026-11-01T10:00:00Z',
      containerStatuses: input.containers.map((c) => containerStatus(c, 'running')),
      ...(input.initContainers
        ? { initContainerStatuses: input.initContainers.map((c) => containerStatus(c, 'terminated')) }
        : {}),
      ...(input.ephemeralContainers
        ? { ephemeralContainerStatuses: input.ephemeralContainers.map((c) => containerStatus(c, 'running')) }
        : {}),
    },
  }
}

const template = (containers: ContainerSpec[], restartPolicy = 'Always') => ({
  metadata: { labels: { app: 'x' } },
  spec: { containers: containers.map(specContainer), restartPolicy },
})

/** Deployment, StatefulSet, DaemonSet or ReplicaSet with a pod template. */
export function workload(
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'ReplicaSet',
  input: {
    namespace: string
    name: string
    containers: ContainerSpec[]
    replicas?: number
    owner?: { kind: string; name: string }
  },
): KubeObject {
  const replicas = input.replicas ?? 1
  return {
    metadata: meta(input.namespace, input.name, input.owner),
    spec: {
      ...(kind === 'DaemonSet' ? {} : { replicas }),
      selector: { matchLabels: { app: input.name } },
      template: template(input.containers),
      ...(kind === 'Deployment' ? { revisionHistoryLimit: 10, strategy: { type: 'RollingUpdate' } } : {}),
      ...(kind === 'StatefulSet' ? { serviceName: input.name } : {}),
    },
    status:
      kind === 'DaemonSet'
        ? { desiredNumberScheduled: 1, numberReady: 1 }
        : { replicas, readyReplicas: replicas },
  }
}

export function job(input: {
  namespace: string
  name: string
  containers: ContainerSpec[]
  owner?: { kind: string; name: string }
}): KubeObject {
  return {
    metadata: meta(input.namespace, input.name, input.owner),
    spec: {
      backoffLimit: 6,
      completions: 1,
      parallelism: 1,
      template: template(input.containers, 'OnFailure'),
    },
    status: { succeeded: 1 },
  }
}

export function cronJob(input: {
  namespace: string
  name: string
  schedule?: string
  containers: ContainerSpec[]
}): KubeObject {
  return {
    metadata: meta(input.namespace, input.name),
    spec: {
      schedule: input.schedule ?? '0 2 * * *',
      concurrencyPolicy: 'Forbid',
      suspend: false,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
      jobTemplate: { spec: { template: template(input.containers, 'OnFailure') } },
    },
    status: {},
  }
}
