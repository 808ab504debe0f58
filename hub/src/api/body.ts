import express from 'express'

/** JSON bodies are accepted with any content type (JupyterHub clients send form types); bodiless is `{}`. */
export const jsonBody = express.json({ limit: '1mb', strict: false, type: () => true })
