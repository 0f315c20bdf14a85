import { writeFileSync } from 'node:fs'
import { type FakeKubernetes, pod, startFakeKubernetes, workload } from '../test/helpers/fake-kubernetes.js'

/**
 * The fake clusters of bench/usage, in a process of their own so that the benchmark's memory is
 * Regent's alone. argv: a folder for the kubeconfigs, a JSON file of `{ digest, tag }` images, the
 * registry's host, the number of clusters and of pods. Prints one JSON line with the kubeconfig
 * paths and the pod count, then serves until stdin closes.
 */
const PODS_PER_DEPLOYMENT = 5

interface Image {
  digest: string
  tag: string
}

function populate(
  cluster: FakeKubernetes,
  index: number,
  clusters: number,
  pods: number,
  host: string,
  images: Image[],
) {
  const deployments = Math.ceil(pods / PODS_PER_DEPLOYMENT)
  for (let d = 0; d < deployments; d++) {
    const image = images[(d * clusters + index) % images.length] as Image
    const previous = images[(d * clusters + index + 1) % images.length] as Image
    const namespace = `team-${d % 40}`
    const name = `svc-${d}`
    const ref = `${host}/bench/plan:${image.tag}`
    cluster.objects.Deployment.push(
      workload('Deployment', {
        namespace,
        name,
        replicas: PODS_PER_DEPLOYMENT,
        containers: [{ name: 'app', image: ref }],
      }),
    )
    cluster.objects.ReplicaSet.push(
      workload('ReplicaSet', {
        namespace,
        name: `${name}-new`,
        owner: { kind: 'Deployment', name },
        containers: [{ name: 'app', image: ref }],
      }),
      workload('ReplicaSet', {
        namespace,
        name: `${name}-old`,
        replicas: 0,
        owner: { kind: 'Deployment', name },
        containers: [{ name: 'app', image: `${host}/bench/plan@${previous.digest}` }],
      }),
    )
    for (let p = 0; p < PODS_PER_DEPLOYMENT && cluster.objects.Pod.length < pods; p++) {
      cluster.objects.Pod.push(
        pod({
          namespace,
          name: `${name}-new-${p}`,
          owner: { kind: 'ReplicaSet', name: `${name}-new` },
          containers: [
            { name: 'app', image: ref, imageID: `docker-pullable://${host}/bench/plan@${image.digest}` },
          ],
          initContainers: [
            { name: 'init', image: 'busybox:1.36', imageID: `docker.io/library/busybox@${image.digest}` },
          ],
        }),
      )
    }
  }
}

const [dir, imagesFile, host, clusterCount, podCount] = process.argv.slice(2)
const images = JSON.parse((await import('node:fs')).readFileSync(imagesFile as string, 'utf8')) as Image[]
const count = Number(clusterCount)
const perCluster = Math.ceil(Number(podCount) / count)
const clusters = await Promise.all(Array.from({ length: count }, () => startFakeKubernetes()))
for (const [i, cluster] of clusters.entries()) populate(cluster, i, count, perCluster, host as string, images)
const kubeconfigs = clusters.map((cluster) => cluster.kubeconfig(dir as string))
writeFileSync(
  1,
  `${JSON.stringify({ kubeconfigs, pods: clusters.reduce((n, c) => n + c.objects.Pod.length, 0) })}\n`,
)
process.stdin.resume()
process.stdin.on('end', async () => {
  await Promise.all(clusters.map((c) => c.close()))
  process.exit(0)
})
