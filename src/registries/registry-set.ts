import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { type Capabilities, type Logger, RegistryClient } from '../oci/index.js'
import type { RegistryConfig } from './config-schema.js'

export interface ConfiguredRegistry {
  config: RegistryConfig
  client: RegistryClient
}

/** The registries from config, each with its own protocol client (one connection pool each). */
export class RegistrySet {
  private readonly byName = new Map<string, ConfiguredRegistry>()

  constructor(
    configs: Config['registries'],
    options: { env?: Record<string, string | undefined>; logger?: Logger } = {},
  ) {
    for (const config of configs) {
      if (this.byName.has(config.name)) throw new Error(`registries: the name ${config.name} is used twice`)
      this.byName.set(config.name, { config, client: new RegistryClient(config, options) })
    }
  }

  get(name: string): ConfiguredRegistry {
    const found = this.byName.get(name)
    if (!found) throw new errors.REGISTRY_UNKNOWN(name)
    return found
  }

  list(): ConfiguredRegistry[] {
    return [...this.byName.values()]
  }

  /**
   * Probed capabilities, waiting at most `timeoutMs` for a probe that has not finished: a slow or
   * down registry makes its entry `unknown`, it never holds up the caller.
   */
  async capabilities(name: string, timeoutMs: number): Promise<Capabilities | undefined> {
    const { client } = this.get(name)
    if (client.capabilities) return client.capabilities
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs)
    })
    try {
      return await Promise.race([client.probe().catch(() => undefined), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.list().map(({ client }) => client.close()))
  }
}
