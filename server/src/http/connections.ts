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
  private readonly open = new Set<Socket>();
  /** Connections with a request being answered. */
  private readonly busy = new Set<Socket>();
  private readonly over = new WeakSet<Socket>();

  constructor(private readonly max: number) {}

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.open.add(socket);
      if (this.open.size > this.max) this.over.add(socket);
      socket.once('close', () => {
        this.open.delete(socket);
        this.busy.delete(socket);
      });
    });
    server.on('request', (req, res) => {
      this.busy.add(req.socket);
      res.once('close', () => this.busy.delete(req.socket));
    });
  }

  /**
   * At shutdown: closes every connection not being answered, those that never sent a request
   * too (Node's closeIdleConnections leaves them, and they would hold the shutdown until a
   * timeout closes them).
   */
  closeUnused(): void {
    for (const socket of this.open) if (!this.busy.has(socket)) socket.destroy();
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      if (!this.over.has(req.socket)) return next();
      res.set('Connection', 'close');
      throw new OverloadedError(`the server has more than ${this.max} connections open; retry later`);
    };
  }
}
