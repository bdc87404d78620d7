#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by the workspace's `prepare` step (run by `npm ci`).
import { main } from "../dist/cli/main.js";
main(process.argv).catch((err) => {
  process.stderr.write(`portcullis: ${err?.message ?? err}\n`);
  process.exit(1);
});
