import net from "node:net";

const HOST = "127.0.0.1";

/** Listen on port 0, read the port the OS picked, close. (Racy by nature, but good enough locally.) */
export async function findFreePort(host = HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** True when nothing is listening on host:port (we could bind it). */
export async function isPortFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
