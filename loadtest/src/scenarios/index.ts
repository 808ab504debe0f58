/**
 * Every load scenario, in the order `fleethub loadtest --help` lists them. A new scenario is one
 * module beside this one (scenario.ts says what it gives) and one entry here: the option parser,
 * the runner and --compare find it in this list.
 */
import { activityStorm } from './activity-storm.js'
import { api } from './api.js'
import { classStart } from './class-start.js'
import { cull } from './cull.js'
import { ramp } from './ramp.js'
import { restart } from './restart.js'
import type { Scenario } from './scenario.js'
import { steady } from './steady.js'

export const SCENARIOS = [classStart, steady, api, activityStorm, ramp, cull, restart] as const
export type ScenarioName = typeof SCENARIOS[number]['name']

/** The scenario of that name, or undefined. */
export function findScenario(name: string | undefined): Scenario | undefined {
  return SCENARIOS.find(s => s.name === name)
}

/** The scenario a parsed config names (parseLoadtestConfig has checked the name). */
export function scenarioOf(config: { readonly scenario: string }): Scenario {
  const scenario = findScenario(config.scenario)
  if (!scenario) throw new Error(`unknown scenario ${JSON.stringify(config.scenario)}`)
  return scenario
}
