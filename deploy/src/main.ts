/** `fleethub deploy render -f values.yaml`: print the manifests as multi-document YAML. */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { parse, stringify } from 'yaml'
import { renderObjects } from './render.js'
import type { K8sObject } from './render.js'
import { resolveValues } from './values.js'

export const DEPLOY_USAGE = `usage: fleethub deploy render [-f values.yaml]... [--namespace NS]

Prints every Kubernetes object fleethub needs (hub Deployment + RBAC, proxy Deployment + Services,
NetworkPolicies, ConfigMap, optionally the Secret and Namespace) as multi-document YAML:

  npx fleethub deploy render -f my-values.yaml | kubectl apply -f -

  -f, --values FILE   values file (YAML); repeatable, later files win; unset keys take the
                      defaults documented in deploy/values.yaml
  --namespace NS      override values.namespace
  --help              this text
`

/** Later files override earlier ones key by key. */
function deepMerge(a: unknown, b: unknown): unknown {
  if (a === null || typeof a !== 'object' || Array.isArray(a) || b === null || typeof b !== 'object' || Array.isArray(b)) return b === undefined ? a : b
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) }
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = deepMerge(out[k], v)
  return out
}

export function toYaml(objects: readonly K8sObject[]): string {
  return objects.map(o => `---\n${stringify(o, { lineWidth: 0 })}`).join('')
}

export async function renderFromFiles(files: readonly string[], namespace?: string): Promise<string> {
  let given: unknown = {}
  for (const f of files) {
    const doc = parse(await readFile(f, 'utf8'))
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) throw new Error(`${f}: the values file must be a mapping`)
    given = deepMerge(given, doc ?? {})
  }
  if (namespace !== undefined) given = deepMerge(given, { namespace })
  return toYaml(renderObjects(resolveValues(given)))
}

export async function main(argv: string[], _env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {
    values: { type: 'string', short: 'f', multiple: true }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } })
  if (values.help === true) { process.stdout.write(DEPLOY_USAGE); return 0 }
  if (positionals[0] !== 'render' || positionals.length > 1) {
    process.stderr.write(`fleethub deploy: expected 'render'\n\n${DEPLOY_USAGE}`)
    return 2
  }
  process.stdout.write(await renderFromFiles(values.values ?? [], values.namespace))
  return 0
}
