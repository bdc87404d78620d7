/**
 * Builds sinks from configuration. A sink without a name is named after its kind and position
 * (`file-0`, `webhook-1`, ...); the name keys its cursor, so reordering unnamed sinks re-exports.
 */
import { FileSink } from "./file.js";
import { SyslogSink } from "./syslog.js";
import type { AuditSink, SinkConfig } from "./types.js";
import { WebhookSink } from "./webhook.js";

export type { AuditSink, SinkConfig, FileSinkConfig, SyslogSinkConfig, WebhookSinkConfig } from "./types.js";
export { SinkRunner, type SinkRunnerOptions, type SinkStore } from "./runner.js";
export { FileSink } from "./file.js";
export { SyslogSink } from "./syslog.js";
export { WebhookSink } from "./webhook.js";

export function sinkKind(cfg: SinkConfig): "file" | "webhook" | "syslog" {
  if ("file" in cfg) return "file";
  if ("webhook" in cfg) return "webhook";
  if ("syslog" in cfg) return "syslog";
  throw new TypeError("audit sink: expected one of file, webhook, syslog");
}

export function createSink(cfg: SinkConfig, index: number): AuditSink {
  const kind = sinkKind(cfg);
  const name = cfg.name ?? `${kind}-${index}`;
  if ("file" in cfg) return new FileSink(name, cfg.file.path);
  if ("webhook" in cfg) return new WebhookSink(name, cfg.webhook);
  if ("syslog" in cfg) return new SyslogSink(name, cfg.syslog);
  throw new TypeError(`audit sink ${name}: unknown kind ${kind}`);
}
