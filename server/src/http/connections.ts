import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from 'express';
import { OverloadedError } from '../errors.js';

/**
 * A cap on concurrent connections that answers rather than drops: Node's own maxConnections
 * closes a new connection unanswered, which a client cannot tell from a crash. Here every
 * request on a connection opened past the cap gets a 429 with Retry-After, and the connection
 * closes after it.
 */
export class ConnectionCap {
  private open = 0;
  private readonly over = new WeakSet<Socket>();

  constructor(private readonly max: number) {}

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.open++;
      if (this.open > this.max) this.over.add(socket);
      socket.once('close', () => this.open--);
    });
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      if (!this.over.has(req.socket)) return next();
      res.set('Connection', 'close');
      throw new OverloadedError(`the server has more than ${this.max} connections open; retry later`);
    };
  }
}
