/** Prometheus metrics of the gateway, one registry per gateway instance (tests run several). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly sessionsActive = new Gauge({ name: "portcullis_sessions_active", help: "Live sessions", labelNames: ["protocol", "connection"], registers: [this.registry] });
  readonly sessionsTotal = new Counter({ name: "portcullis_sessions_total", help: "Sessions opened", labelNames: ["protocol", "connection"], registers: [this.registry] });
  readonly authFailures = new Counter({ name: "portcullis_auth_failures_total", help: "Refused logins by reason", labelNames: ["protocol", "reason"], registers: [this.registry] });
  readonly bytes = new Counter({ name: "portcullis_bytes_total", help: "Bytes relayed", labelNames: ["protocol", "direction"], registers: [this.registry] });
  readonly decisions = new Counter({ name: "portcullis_decisions_total", help: "Operations refused or held by policy, by rule", labelNames: ["action", "rule"], registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: "portcullis_protocol_errors_total", help: "Sessions ended by malformed input", labelNames: ["protocol"], registers: [this.registry] });
  readonly connectionLimitHits = new Counter({ name: "portcullis_connection_limit_hits_total", help: "Connections refused or ended by a connection limit (max_connections, max_unauthenticated, max_unauthenticated_per_source, authentication_timeout, max_buffered_bytes)", labelNames: ["protocol", "limit"], registers: [this.registry] });
  readonly connectionsOpen = new Gauge({ name: "portcullis_connections_open", help: "Agent connections open, by whether they have authenticated", labelNames: ["protocol", "state"], registers: [this.registry] });
  readonly bufferedBytes = new Gauge({ name: "portcullis_buffered_bytes", help: "Bytes held buffered across sessions (partial messages, queued frames, handshakes), against gateway.max_buffered_bytes", labelNames: ["protocol"], registers: [this.registry] });

  readonly auditAvailable = new Gauge({ name: "portcullis_audit_available", help: "1 while the audit log can be written; 0 while operations are refused (PX005)", registers: [this.registry] });
  readonly auditRecords = new Gauge({ name: "portcullis_audit_last_seq", help: "Sequence number of the newest committed audit record", registers: [this.registry] });
  readonly auditSinkLag = new Gauge({ name: "portcullis_audit_sink_lag_records", help: "Audit records committed but not yet delivered, per sink", labelNames: ["sink"], registers: [this.registry] });
  readonly alerts = new Counter({ name: "portcullis_alerts_total", help: "Alerts raised, by kind", labelNames: ["kind"], registers: [this.registry] });

  constructor() {
    this.auditAvailable.set(1);
    collectDefaultMetrics({ register: this.registry, prefix: "portcullis_process_" });
  }
}
