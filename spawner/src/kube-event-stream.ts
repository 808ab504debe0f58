/**
 * A watch without a cache, for pod events: get the current resourceVersion (a LIST with
 * limit=1), then stream from it; after a drop resume from the last version seen, after 410 Gone
 * start again from now. Only starts in progress want events, and they register before they
 * create their pod, so a live stream is enough (10k pods mean 50k events: not worth caching).
 */
import type { CoreV1Event, Watch } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { Restarter } from './kube-restarter.js'
import { statusOf } from './kube-retry.js'

export class EventStream {
  readonly #watch: Watch
  readonly #path: string
  readonly #fieldSelector: string
  readonly #currentVersion: () => Promise<string>
  readonly #onEvent: (ev: CoreV1Event) => void
  readonly #restarter: Restarter
  #rv = ''
  #request: AbortController | undefined
  #resolveReady!: () => void
  /** Resolves once the first watch request is open. */
  readonly ready: Promise<void>

  constructor(watch: Watch, path: string, fieldSelector: string, currentVersion: () => Promise<string>, onEvent: (ev: CoreV1Event) => void, log: Logger) {
    this.#watch = watch
    this.#path = path
    this.#fieldSelector = fieldSelector
    this.#currentVersion = currentVersion
    this.#onEvent = onEvent
    this.#restarter = new Restarter(() => this.#run(), log)
    this.ready = new Promise(resolve => { this.#resolveReady = resolve })
  }

  start(): void {
    this.#restarter.start()
  }

  async #run(): Promise<void> {
    if (this.#restarter.stopped) return
    if (this.#rv === '') this.#rv = await this.#currentVersion()
    let ended = false
    this.#request = await this.#watch.watch(this.#path, { resourceVersion: this.#rv, fieldSelector: this.#fieldSelector, allowWatchBookmarks: true },
      (phase, obj) => {
        if (phase === 'ERROR') { if (obj?.code === 410) this.#rv = ''; return }
        if (obj?.metadata?.resourceVersion !== undefined) this.#rv = obj.metadata.resourceVersion
        this.#restarter.healthy()
        if (phase === 'ADDED' || phase === 'MODIFIED') this.#onEvent(obj as CoreV1Event)
      },
      err => {
        if (ended || this.#restarter.stopped) return
        ended = true
        if (statusOf(err) === 410) this.#rv = ''
        if (err !== null && err !== undefined && statusOf(err) !== 410) this.#restarter.failed(err)
        else this.start()
      })
    if (!ended) this.#resolveReady()
  }

  async stop(): Promise<void> {
    this.#restarter.stop()
    this.#request?.abort()
  }
}
