/**
 * The pod informer: a ListWatch (list, then watch, with a cache the spawner reads) that
 * restarts itself after errors, with backoff, and tells when it first listed. poll() must not
 * answer before that first LIST (kubespawner #786), hence `ready`.
 */
import type { KubernetesObject, ListWatch } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { Restarter } from './kube-restarter.js'

export class Informer<T extends KubernetesObject> {
  readonly lw: ListWatch<T>
  /** Resolves after the first successful LIST. */
  readonly ready: Promise<void>
  readonly #restarter: Restarter
  #resolveReady!: () => void

  constructor(lw: ListWatch<T>, log: Logger) {
    this.lw = lw
    this.ready = new Promise(resolve => { this.#resolveReady = resolve })
    this.#restarter = new Restarter(() => this.#run(), log)
    lw.on('error', err => this.#restarter.failed(err))
    const healthy = (): void => this.#restarter.healthy()
    lw.on('add', healthy); lw.on('update', healthy); lw.on('delete', healthy)
  }

  start(): void {
    this.#restarter.start()
  }

  async #run(): Promise<void> {
    if (this.#restarter.stopped) return
    await this.lw.start()
    // start() resolves after LIST + WATCH set-up, or after reporting an error (then the
    // resourceVersion is still empty and the 'error' handler has scheduled the next attempt).
    if (this.lw.latestResourceVersion() !== '') { this.#restarter.healthy(); this.#resolveReady() }
  }

  async stop(): Promise<void> {
    this.#restarter.stop()
    await this.lw.stop()
  }
}
