#!/usr/bin/env node
// The file npm links as the relay-conformance command. It is committed, not built: npm links a
// workspace's bins while it installs, before the root's prepare script builds dist/, and skips
// a bin whose file does not exist yet (as server/bin/relay-server.js explains).
import('../dist/bin.js').catch((err) => {
  const missing = err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js');
  process.stderr.write(
    missing
      ? 'relay-conformance: not built yet: run `npm run build` at the repository root\n'
      : `relay-conformance: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(2);
});
