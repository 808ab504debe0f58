#!/usr/bin/env node
/**
 * The `fleethub` command: one entry point, one lazily imported module per subcommand, so that
 * `fleethub proxy` never loads the hub and `fleethub --help` loads nothing.
 */
type Main = (argv: string[], env: NodeJS.ProcessEnv) => Promise<number | void>

interface Command {
  readonly summary: string
  readonly load: () => Promise<Main>
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'run the whole hub: embedded Postgres (unless DATABASE_URL), proxy, hub', load: async () => (await import('../hub/src/main.js')).startMain },
  hub: { summary: 'run the hub process alone (needs DATABASE_URL or the embedded default)', load: async () => (await import('../hub/src/main.js')).hubMain },
  proxy: { summary: 'run the proxy alone (configurable-http-proxy 5.3 compatible flags, CONFIGPROXY_AUTH_TOKEN)', load: async () => (await import('../proxy/src/main.js')).main },
  db: { summary: 'database tasks: `db migrate`, `db migrate --down`', load: async () => (await import('../hub/src/db-cli.js')).dbMain },
  token: { summary: 'mint an API token for a user in the database and print it (like `jupyterhub token`)', load: async () => (await import('../hub/src/tokens/token-cli.js')).main },
  deploy: { summary: 'render the Kubernetes manifests: `deploy render -f values.yaml | kubectl apply -f -`', load: async () => (await import('../deploy/src/main.js')).main },
  loadtest: { summary: 'simulated users against fleethub or JupyterHub (--compare); `loadtest --help` lists the scenarios; `loadtest sim-servers`', load: async () => (await import('../loadtest/src/main.js')).main },
  'kube-sim': { summary: 'a simulated Kubernetes API server + kubelet for tests and load tests', load: async () => (await import('../kube-sim/src/main.js')).main },
  cull: { summary: 'stop idle servers through the REST API (jupyterhub-idle-culler options; JUPYTERHUB_API_TOKEN)', load: async () => (await import('../hub/src/culler/cull-cli.js')).main },
  singleuser: { summary: 'run the built-in single-user server (configured by the JUPYTERHUB_* environment)', load: async () => (await import('../spawner/src/singleuser/main.js')).main },
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map(name => name.length))
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  return `usage: fleethub <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n` +
    'Run `fleethub <command> --help` for the options of one command.\n'
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`fleethub: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  const main = await command.load()
  return (await main(rest, process.env)) ?? 0
}

run(process.argv.slice(2)).then(
  code => { if (code !== 0) process.exitCode = code },
  err => {
    process.stderr.write(`fleethub: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
