export * from './spawner.js'
export * from './local-process.js'
export * from './singleuser/index.js'
