/**
 * Continuous export of the audit log to where operators keep their evidence. Sinks receive
 * records in seq order, at least once: a batch is sent again after a failure or a restart, so
 * receivers de-duplicate by `seq` (and can check the chain with `prev`/`hash`).
 */
import type { ExportedRecord } from "../chain.js";

export interface AuditSink {
  /** Keys the sink's persisted cursor: renaming a sink re-exports from the start. */
  readonly name: string;
  /** Resolves once the receiver holds the records (as far as the transport can tell); rejects to have them retried. */
  deliver(records: ExportedRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface FileSinkConfig {
  path: string;
}

export interface WebhookSinkConfig {
  url: string;
  secret?: string;
}

export interface SyslogSinkConfig {
  host: string;
  port: number;
  /** RFC 5425 syslog over TLS; the server's certificate is always verified. */
  tls?: boolean;
  /** PEM CA certificate(s) to verify the server with, instead of the system's roots. */
  ca?: string;
  /** APP-NAME; default "portcullis". */
  app_name?: string;
  /** 0..23; default 10 (authpriv). */
  facility?: number;
}

export type SinkConfig = { name?: string } & (
  | { file: FileSinkConfig }
  | { webhook: WebhookSinkConfig }
  | { syslog: SyslogSinkConfig }
);
