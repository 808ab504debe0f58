/**
 * Just enough of the Chrome DevTools protocol to measure another Node process from outside: full
 * GCs, its `process.memoryUsage()`, and a heap snapshot, over the `--inspect` websocket.
 */
import WebSocket from 'ws'

export interface Inspector {
  /** `process.memoryUsage()` as it is, garbage included. */
  memory(): Promise<NodeJS.MemoryUsage>
  /** Two full GCs (the second catches what the first's finalizers freed), then `process.memoryUsage()`. */
  memoryAfterGc(): Promise<NodeJS.MemoryUsage>
  /** A heap snapshot (after a GC, as the protocol takes it), as its JSON text. */
  heapSnapshot(): Promise<string>
  close(): void
}

export async function connectInspector(url: string): Promise<Inspector> {
  const ws = new WebSocket(url, { maxPayload: 1 << 30 })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  let nextId = 1
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  const chunks: string[] = []
  ws.on('message', data => {
    const msg = JSON.parse(data.toString())
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') { chunks.push(msg.params.chunk); return }
    const p = msg.id === undefined ? undefined : pending.get(msg.id)
    if (!p) return
    pending.delete(msg.id)
    if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`))
    else p.resolve(msg.result)
  })
  const call = (method: string, params: Record<string, unknown> = {}): Promise<any> => new Promise((resolve, reject) => {
    const id = nextId++
    pending.set(id, { resolve, reject })
    ws.send(JSON.stringify({ id, method, params }))
  })
  await call('Runtime.enable')
  const memory = async (): Promise<NodeJS.MemoryUsage> => {
    const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })
    return JSON.parse(r.result.value) as NodeJS.MemoryUsage
  }
  return {
    memory,
    async memoryAfterGc() {
      await call('HeapProfiler.collectGarbage')
      await call('HeapProfiler.collectGarbage')
      return memory()
    },
    async heapSnapshot() {
      chunks.length = 0
      await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
      const text = chunks.join('')
      chunks.length = 0
      return text
    },
    close() { ws.close() },
  }
}
