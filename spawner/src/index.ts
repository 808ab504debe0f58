export * from './spawner.js'
