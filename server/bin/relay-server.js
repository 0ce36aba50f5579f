#!/usr/bin/env -S node --max-semi-space-size=32
// The file npm links as the relay-server command. It is committed, not built: npm links a
// workspace's bins while it installs, before the root's prepare script builds dist/, and
// skips a bin whose file does not exist yet, which left `npx relay-server` in a fresh clone
// with nothing to run. Node flags: as in src/bin.ts, whose first line this one repeats.
import('../dist/bin.js').catch((err) => {
  const missing = err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js');
  process.stderr.write(
    missing
      ? 'relay-server: not built yet: run `npm run build` at the repository root\n'
      : `relay-server: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
