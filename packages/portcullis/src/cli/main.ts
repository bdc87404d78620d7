/** The `portcullis` command line: one file per command group. */
import { Command } from "commander";
import { registerApprovals } from "./approvals.js";
import { registerAudit } from "./audit.js";
import { registerConfig } from "./config.js";
import { registerContainment } from "./containment.js";
import { registerDemo } from "./demo.js";
import { registerPolicy } from "./policy.js";
import { registerQuickstart } from "./quickstart.js";
import { registerReplay } from "./replay.js";
import { registerServe } from "./serve.js";
import { registerSessions } from "./sessions.js";
import { registerToken } from "./token.js";

export async function main(argv: string[]): Promise<void> {
  const program = new Command("portcullis")
    .description("Identity-aware gateway between AI agents and their data")
    .version("0.1.0")
    .showHelpAfterError("(add --help for usage)");
  registerServe(program);
  registerConfig(program);
  registerToken(program);
  registerPolicy(program);
  registerQuickstart(program);
  registerSessions(program);
  registerReplay(program);
  registerAudit(program);
  registerApprovals(program);
  registerContainment(program);
  registerDemo(program);
  await program.parseAsync(argv);
}
