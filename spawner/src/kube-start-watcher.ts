/**
 * One start's view of its pod: the spawner forwards it the informer's updates and the event
 * stream's events about that pod, and it gives back progress messages and, in the end, the
 * server's URL or a coded SpawnerError (image pull, crash, deleted, timeout, cancelled).
 */
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node'
import { SpawnerError } from './spawner.js'
import type { StartOptions } from './spawner.js'

/** Container waiting reasons after which a start cannot succeed by waiting. */
const FATAL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError', 'CrashLoopBackOff'])
const FATAL_EVENT_GRACE_MS = 1000

/** Turns informer callbacks about one pod into progress events and a ready URL or a failure. */
export class StartWatcher {
  readonly done: Promise<string>
  #resolve!: (url: string) => void
  #reject!: (err: SpawnerError) => void
  #uid: string | undefined
  #settled = false
  readonly #early: CoreV1Event[] = []
  readonly #seen = new Set<string>()
  #progress = 10
  #lastEvent = 'no events yet'
  #lastEventWarning = false
  #fatal: { code: string, why: string } | undefined
  #fatalTimer: NodeJS.Timeout | undefined

  constructor(readonly name: string, readonly port: number, readonly report: StartOptions['progress']) {
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    this.done.catch(() => undefined)
  }

  created(pod: V1Pod): void {
    this.#uid = pod.metadata?.uid
    for (const ev of this.#early.splice(0)) this.event(ev)
    this.pod(pod, false)
  }

  event(ev: CoreV1Event): void {
    if (this.#settled) return
    if (this.#uid === undefined) { this.#early.push(ev); return }
    const key = ev.metadata?.uid ?? `${ev.metadata?.name}/${ev.count ?? 1}`
    if (ev.involvedObject?.uid !== this.#uid || this.#seen.has(key)) return
    this.#seen.add(key)
    const when = ev.lastTimestamp ?? ev.firstTimestamp ?? ev.eventTime
    const ts = when === undefined || when === null ? '' : `${new Date(when as unknown as string).toISOString()} `
    this.#lastEvent = `[${ev.type ?? 'Normal'}] ${ev.reason ?? ''}: ${ev.message ?? ''}`
    this.#lastEventWarning = ev.type === 'Warning'
    // KubeSpawner's progress curve: approach 90% by a third of the rest per event.
    this.#progress += (90 - this.#progress) / 3
    this.report({ progress: Math.round(this.#progress), message: `${ts}[${ev.type ?? 'Normal'}] ${ev.message ?? ev.reason ?? ''}` })
    if (this.#fatal !== undefined && ev.type === 'Warning') this.#failFatal()
  }

  #failFatal(): void {
    if (this.#fatal !== undefined) this.#fail(this.#fatal.code, `${this.#fatal.why}; last event: ${this.#lastEvent}`)
  }

  pod(pod: V1Pod | undefined, deleted: boolean): void {
    if (this.#settled || this.#uid === undefined || pod?.metadata?.uid !== this.#uid) return
    if (deleted) return this.#fail('SPAWNER_POD_DELETED', `pod ${this.name} was deleted while starting (last event: ${this.#lastEvent})`)
    const status = pod.status
    const waitingState = status?.containerStatuses?.[0]?.state?.waiting
    if (waitingState?.reason !== undefined && FATAL_WAITING.has(waitingState.reason)) {
      const code = waitingState.reason.includes('Image') ? 'SPAWNER_IMAGE_PULL' : 'SPAWNER_CONTAINER_FAILED'
      const why = `pod ${this.name} cannot start: ${waitingState.reason}${waitingState.message !== undefined ? ` (${waitingState.message})` : ''}`
      // Pod and event watches are separate streams: give the kubelet's Warning event (the
      // detailed reason) a moment to arrive so the user sees it as progress and in the error.
      if (this.#fatal === undefined) {
        this.#fatal = { code, why }
        if (this.#lastEventWarning) return this.#failFatal()
        this.#fatalTimer = setTimeout(() => this.#failFatal(), FATAL_EVENT_GRACE_MS)
      }
      return
    }
    if (status?.phase === 'Failed' || status?.phase === 'Succeeded') {
      return this.#fail('SPAWNER_POD_FAILED', `pod ${this.name} ${status.phase === 'Failed' ? 'failed' : 'exited'}: ${status.reason ?? ''} ${status.message ?? ''}; last event: ${this.#lastEvent}`.replace(/\s+/g, ' '))
    }
    const ready = status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') ?? false
    if (status?.phase === 'Running' && ready && status.podIP) {
      this.#settled = true
      const host = status.podIP.includes(':') ? `[${status.podIP}]` : status.podIP
      this.report({ progress: 95, message: `Pod ${this.name} is running at ${status.podIP}` })
      this.#resolve(`http://${host}:${this.port}`)
    }
  }

  timeout(ms: number): void {
    this.#fail('SPAWNER_START_TIMEOUT', `pod ${this.name} was not ready after ${Math.round(ms / 1000)}s; last event: ${this.#lastEvent}`)
  }

  abort(): void {
    this.#fail('SPAWNER_START_CANCELLED', `start of ${this.name} was cancelled; last event: ${this.#lastEvent}`)
  }

  #fail(code: string, message: string): void {
    clearTimeout(this.#fatalTimer)
    if (this.#settled) return
    this.#settled = true
    this.#reject(new SpawnerError(code, message))
  }
}
