import express, { type NextFunction, type Request, type Response } from 'express'

const parseJson = express.json({ limit: '1mb', strict: false, type: () => true })

/**
 * JSON bodies are accepted with any content type (JupyterHub clients send form types); bodiless
 * is `{}`. A declared empty body (`content-length: 0`, what fetch sends for a bodiless POST, as
 * every spawn and stop is) skips the stream read.
 */
export function jsonBody(req: Request, res: Response, next: NextFunction): void {
  if (req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined) {
    req.body = {}
    return next()
  }
  parseJson(req, res, next)
}
